"""The epoch's loss and accuracy, summed once per epoch instead of once per step (see
``scratchnn.engine``).

A training step with the softmax cross-entropy and integer labels already computes, for each sample,
``s = sum(exp(z - max z))`` and ``zy = z_y - max z``; the sample's loss is ``log(s) - zy``. Reducing
that to the batch's mean loss, and counting the batch's correct predictions, takes ~8 small NumPy
calls per step, ~5% of a step at batch 8. So the step writes ``s``, ``zy`` and the predicted class
into arrays of up to 65,536 rows (the labels are gathered into a fourth; a longer epoch folds them
into running totals whenever they are full, so the memory stays ~1.7 MB whatever the data set's
size), and the epoch's loss and accuracy are a few reductions at its end; a batch's values are
computed only when a callback asks for them (``on_batch_end``; fit's progress bar reads the running
``epoch()`` sums when it refreshes, ~20 times an epoch). The numbers are
the same as the per-step sums up to float rounding (the sums here run in float64).
"""
from __future__ import annotations

import numpy as np



#: rows an ``EpochRecord`` holds before it folds them into its running totals
CAPACITY = 65_536


class EpochRecord:
    """Per-sample loss terms, predictions and labels of an epoch of ``samples`` samples, in batches
    of up to ``batch_size``.

    ``batch()`` and ``epoch()`` read what ``StepSums`` (below) reads for any other loss."""

    def __init__(self, samples, batch_size, dtype, label_dtype):
        rows = max(min(samples, CAPACITY), batch_size)
        self.s = np.empty(rows, dtype)
        self.zy = np.empty(rows, dtype)
        self.pred = np.empty(rows, np.intp)
        self.labels = np.empty(rows, label_dtype)
        self.begin()

    def begin(self):
        self.start = self.stop = 0  # the rows of the batch being (or last) stepped
        self.folded = (0.0, 0)  # loss and hits of the rows folded away earlier in the epoch
        self.penalty = 0.0  # sum over steps of (batch size x the regularizers' penalty)
        self.last_penalty = 0.0

    def next_batch(self, m) -> slice:
        """The rows of the next batch of ``m`` samples."""
        if self.stop + m > len(self.s):  # full: fold what is there into the running totals
            loss, hits = self._totals(0, self.stop)
            self.folded = (self.folded[0] + loss, self.folded[1] + hits)
            self.stop = 0
        self.start, self.stop = self.stop, self.stop + m
        return slice(self.start, self.stop)

    def rows(self, a=0, b=None):
        """``(s, zy)`` of the current batch's samples ``a:b`` (for the loss kernel), and their predictions."""
        lo = self.start + a
        hi = self.stop if b is None else self.start + b
        return (self.s[lo:hi], self.zy[lo:hi]), self.pred[lo:hi]

    def add_penalty(self, penalty):
        self.last_penalty = penalty
        self.penalty += penalty * (self.stop - self.start)

    def _totals(self, lo, hi):
        s, zy = self.s[lo:hi], self.zy[lo:hi]
        loss = float(np.add.reduce(np.log(s), dtype=np.float64)) - float(np.add.reduce(zy, dtype=np.float64))
        hits = int(np.count_nonzero(self.pred[lo:hi] == self.labels[lo:hi]))
        return loss, hits

    def batch(self):
        """``(mean loss + penalty, correct predictions)`` of the last batch, as ``train_step`` returns them."""
        loss, hits = self._totals(self.start, self.stop)
        return loss / (self.stop - self.start) + self.last_penalty, hits

    def epoch(self):
        """``(summed loss of the samples so far, penalties included, correct predictions)``."""
        loss, hits = self._totals(0, self.stop)
        return self.folded[0] + loss + self.penalty, self.folded[1] + hits

    def batch_loss(self):
        """The last batch's mean loss + penalty reduced as the kernel's per-step value is, in the
        model's dtype (a float32 sum that overflows is inf here too): what decides whether a step
        whose probe was not finite is refused."""
        s, zy = self.s[self.start:self.stop], self.zy[self.start:self.stop]
        with np.errstate(over="ignore", invalid="ignore"):
            value = float(np.add.reduce(np.log(s)) - np.add.reduce(zy))
        return value / (self.stop - self.start) + self.last_penalty


class StepSums:
    """The per-step way, for every other loss and target: each step's mean loss and correct count,
    added up as the steps go (what ``fit(..., engine="reference")`` does)."""

    def __init__(self):
        self.begin()

    def begin(self):
        self.loss = 0.0
        self.hits = 0
        self.last = (0.0, 0)

    def add(self, loss, hits, size):
        self.last = (loss, hits)
        self.loss += loss * size
        self.hits += hits

    def batch(self):
        return self.last

    def epoch(self):
        return self.loss, self.hits
