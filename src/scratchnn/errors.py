"""The errors scratchnn raises on purpose, all under one base class.

Every error the library raises because of what it was given (a bad argument, a corrupt file,
a missing data set, a diverging run) derives from :class:`ScratchnnError`, and also from the
built-in exception it always was (``ValueError``, ``TypeError``, ``FileNotFoundError``...), so
``except ValueError`` keeps working. The command line prints any of them as one line and exits
with status 2; anything else is a bug and keeps its traceback.

    >>> from scratchnn.layers import Dropout
    >>> try:
    ...     Dropout(1.5)
    ... except ScratchnnError as e:
    ...     print(e)
    Dropout: rate must be in [0, 1), received 1.5
"""
from __future__ import annotations


class ScratchnnError(Exception):
    """Base class of every error scratchnn raises on purpose."""


class InvalidArgumentError(ScratchnnError, ValueError):
    """A value that is out of range, of the wrong shape, or not understood."""


class InvalidTypeError(ScratchnnError, TypeError):
    """An argument of the wrong type."""


class StateError(ScratchnnError, RuntimeError):
    """A call made before the object is ready (a model that is not built or compiled)."""


class MissingDependencyError(ScratchnnError, ImportError):
    """An optional package that this feature needs is not installed."""


class MissingFileError(ScratchnnError, FileNotFoundError):
    """A file the user named does not exist."""


class DataFormatError(ScratchnnError, ValueError):
    """A data file that is truncated, corrupt, or not in the format it claims."""


class ModelFileError(ScratchnnError, ValueError):
    """A model or checkpoint file that is missing, truncated, or not in scratchnn's format."""


class UsageError(InvalidArgumentError):
    """A bad command-line flag or value (the command line prints it as ``scratchnn CMD: error: ...``)."""


class TrainingDivergedError(ScratchnnError, FloatingPointError):
    """Training produced a NaN or infinite loss. ``epoch`` and ``batch`` (from 1) say where, when known."""

    epoch: int | None = None
    batch: int | None = None

    @classmethod
    def at(cls, loss, epoch, batch) -> "TrainingDivergedError":
        """The error for a loss of ``loss`` in batch ``batch`` of epoch ``epoch`` (both counted from 0)."""
        error = cls(f"loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped (try a smaller "
                    "learning rate, or check the inputs' scale)")
        error.epoch, error.batch = epoch + 1, batch + 1
        return error
