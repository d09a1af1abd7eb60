"""Models in and out of PyTorch and ONNX.

A scratchnn network is not a dead end: export it to run in ONNX Runtime (servers, phones, the
browser) or in PyTorch, and bring a PyTorch or ONNX network in to inspect, fine-tune or compare it
layer by layer. The weight layouts already agree with PyTorch's (``Conv2D`` weights are
``(out, in, kh, kw)``, images are NCHW and flatten in C order), so each layer maps to one module or
operator, with its weights copied unchanged (``Dense.W`` is stored transposed, as ``Linear.weight``).

    >>> import scratchnn
    >>> from scratchnn import interop
    >>> model = scratchnn.load("runs/mnist-cnn/model.npz")
    >>> interop.to_onnx(model, "mnist-cnn.onnx")          # pip install "scratchnn[onnx]"
    >>> module = interop.to_torch(model)                   # pip install "scratchnn[torch]"
    >>> again = interop.from_torch(module, input_shape=(1, 28, 28))
    >>> same = interop.from_onnx("mnist-cnn.onnx")

What is and is not in an exported graph:

- Every layer in ``SUPPORTED`` is converted; any other layer is refused by name.
- ``Standardize`` (``scratchnn train --standardize``) is a layer, so it is part of the graph.
- The scaling of raw pixels to [0, 1] (``model.info["preprocess"] == "scale_255"``) is not: it is
  the caller's job, as for ``scratchnn predict``. ONNX files carry it in their metadata.
- The training-only augmentation layers (``RandomShift``, ``RandomFlip``) act as the identity at
  inference and are left out of the ONNX graph (``nn.Identity`` in PyTorch); ``Dropout`` is a
  ``Dropout`` module / an inference-mode ONNX ``Dropout`` node, which is the identity.

PyTorch and ONNX are optional: this package loads them only when a function needs them.
"""
from __future__ import annotations

from ._common import SUPPORTED

__all__ = ["to_onnx", "from_onnx", "to_torch", "from_torch", "SUPPORTED"]


def to_torch(model):
    """A ``torch.nn.Sequential`` (in eval mode) computing what ``model`` computes, with identical weights.

    Needs PyTorch (``pip install "scratchnn[torch]"``). Layers map to ``Linear``, ``Conv2d``
    (with a ``ZeroPad2d`` before it when the padding is not symmetric), ``MaxPool2d``, ``AvgPool2d``,
    ``AdaptiveAvgPool2d(1)`` + ``Flatten``, ``BatchNorm1d``/``BatchNorm2d`` (momentum converted:
    PyTorch's ``momentum`` is ``1 - scratchnn's``), ``Dropout``, ``Flatten``, ``Unflatten``, the
    activations, and two small modules of ``scratchnn.interop.pytorch`` where PyTorch has none:
    ``Maxout`` and ``Standardize``. Child modules are named after the layers.

    Example:
        >>> module = to_torch(model)
        >>> torch.save(module.state_dict(), "model.pt")
    """
    from . import pytorch
    return pytorch.to_torch(model)


def from_torch(module, input_shape):
    """A built scratchnn ``Sequential`` equal to a ``torch.nn.Sequential`` of supported modules.

    Args:
        module: a ``torch.nn.Sequential`` (nested ones are flattened) or a list of modules.
        input_shape: per-sample input shape, batch axis excluded, e.g. ``(1, 28, 28)``.

    Weights and batch-norm statistics are copied (the model takes PyTorch's float dtype). A module
    without a scratchnn counterpart is refused by name, with the list of supported ones.

    Example:
        >>> net = from_torch(torch_module, input_shape=(1, 28, 28))
        >>> net.compile("adam"); net.fit(X, y)
    """
    from . import pytorch
    return pytorch.from_torch(module, input_shape)


def to_onnx(model, path=None, opset=21, dtype="float32"):
    """Write ``model`` as an ONNX graph to ``path`` (and return the ``onnx.ModelProto``).

    The graph passes ``onnx.checker`` (full check), has one input ``"input"`` of shape
    ``("batch", *model.input_shape)`` with a dynamic batch axis, one output (``"logits"``, or
    ``"probabilities"`` when the model ends in ``Softmax``), and carries ``model.info`` (data set,
    class names, preprocessing) as metadata properties. Needs ``pip install "scratchnn[onnx]"``.

    Args:
        opset: ONNX operator set, 13 up to the installed ``onnx``'s newest. The default, 21 (ONNX 1.16,
            2024), runs in ONNX Runtime 1.18 and later.
        dtype: ``"float32"`` (default; a float64 model's weights are rounded to it) or ``"float64"``,
            which keeps them exactly but which ONNX Runtime cannot run for every operator (Conv, pooling).

    Example:
        >>> to_onnx(model, "model.onnx")
        >>> import onnxruntime as ort
        >>> ort.InferenceSession("model.onnx").run(None, {"input": X[:5]})[0]
    """
    from . import onnx_io
    return onnx_io.to_onnx(model, path, opset=opset, dtype=dtype)


def from_onnx(path_or_model, input_shape=None):
    """A built scratchnn ``Sequential`` from an ONNX graph made of the supported operators.

    Reads what ``to_onnx`` writes and what ``torch.onnx.export`` writes for a ``Sequential`` of the
    modules ``from_torch`` accepts (shape arithmetic and constant subgraphs are evaluated). The graph
    must be a chain: one input, each operator feeding the next. ``input_shape`` (batch axis
    excluded) is needed only when the graph's input has symbolic dimensions besides the batch.
    """
    from . import onnx_io
    return onnx_io.from_onnx(path_or_model, input_shape=input_shape)
