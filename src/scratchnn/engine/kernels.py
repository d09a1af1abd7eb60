"""Faster versions of some layers' passes and of the softmax cross-entropy: the same math as the plain
code in ``scratchnn.layers`` and ``scratchnn.losses``, in fewer passes over memory.

The engine looks a kernel up by the layer's exact class (a subclass of ``ReLU`` that overrides
``forward`` keeps its own code) and falls back to the layer's plain ``forward(x, training)`` /
``backward(dy)`` when there is none. ``tests/test_engine.py`` proves each kernel equal to the plain
code. Kernels:

- forward ``(layer, x, training) -> y``;
- backward ``(layer, dy, need_dx, step) -> dx or None``: ``need_dx`` is False for the lowest layer
  that trains (nothing below it needs an input gradient); ``step`` is a number only for the
  parameters listed in ``direct_keys``, when the optimizer is plain SGD: the kernel then adds
  ``step * gradient`` into the parameter itself (``Dense``: a large ``W`` in one BLAS call instead
  of a gradient array and two passes, ``b`` as one matrix-vector product);
- loss ``(loss, z, target, rows=None) -> (value, dL/dz)`` (``rows``: see ``softmax_cross_entropy``).

``register_kernel`` is the one hook through which a layer of your own can get kernels too.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from ..backend import get_array_module
from ..errors import InvalidArgumentError, InvalidTypeError
from ..layers import LAYERS, BatchNorm, BatchNorm2D, Conv2D, Dense, Layer, Maxout, ReLU
from ..losses import SoftmaxCrossEntropy
from . import blas, buffers, winograd

FORWARD: dict = {}
BACKWARD: dict = {}
LOSSES: dict = {}
#: parameters a backward kernel can step itself under plain SGD (see the module docstring)
DIRECT_KEYS: dict = {}
#: classes whose samples are computed independently of each other, so a batch may be split across
#: threads (filled with the library's own layers at the end of this module, and by register_kernel)
SAMPLE_WISE: set = set()
#: classes that couple the samples of a batch but have a synchronized kernel for split batches
SYNCED: set = set()


def register_kernel(layer_cls, forward=None, backward=None, direct_keys=(), sample_wise=False) -> None:
    """Give the engine faster passes for ``layer_cls`` (its exact class).

    Args:
        forward: ``forward(layer, x, training) -> y``, computing what ``layer.forward`` computes.
        backward: ``backward(layer, dy, need_dx, step) -> dx or None`` (see the module docstring).
        direct_keys: parameters ``backward`` steps itself when given ``step``.
        sample_wise: the layer computes each sample independently of the others (no batch statistics),
            so the engine may split its batches across threads. A model with a layer not known to be
            sample-wise is never split.

    Prove the kernels equal to the layer's plain passes in a test: ``fit(..., engine="reference")``
    runs the plain ones.
    """
    if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
        raise InvalidTypeError(f"register_kernel: expected a Layer subclass, received {layer_cls!r}")
    if direct_keys and backward is None:
        raise InvalidArgumentError("register_kernel: direct_keys needs a backward kernel that takes the step")
    if sample_wise:
        SAMPLE_WISE.add(layer_cls)
    if forward is not None:
        FORWARD[layer_cls] = forward
    if backward is not None:
        BACKWARD[layer_cls] = backward
        DIRECT_KEYS[layer_cls] = tuple(direct_keys)


# -- row reductions ----------------------------------------------------------------------------------
_CONSTANTS: dict = {}


def _constant(xp, n, dtype, value=1):
    """A read-only vector of ``n`` copies of ``value``, cached: the ones of the row sums, and plain
    SGD's ``-lr`` for the bias step (a few per run, as the learning rate changes: bounded)."""
    key = (xp, n, dtype, value)
    v = _CONSTANTS.get(key)
    if v is None:
        if len(_CONSTANTS) > 64:
            _CONSTANTS.clear()
        v = _CONSTANTS[key] = xp.full(n, value, dtype)
        if isinstance(v, np.ndarray):
            v.flags.writeable = False
    return v


def row_max(x):
    """Maximum of each row of a 2-D array, shape ``(n,)``.

    NumPy reduces along short rows one row at a time (~2.4 us for 32 x 10 float32, 23 us for
    512 x 10); reducing a transposed copy along its first axis runs its SIMD loop across rows
    instead (1.7 and 3.6 us). The copy pays for rows of up to ~32 values and from 16 rows on;
    otherwise the plain reduction runs. NaN propagates as in ``np.max``.
    """
    xp = np if type(x) is np.ndarray else get_array_module(x)  # (inline: the hot path's every call counts)
    if len(x) < 16 or x.shape[1] > 32:
        return xp.maximum.reduce(x, axis=1)
    return xp.maximum.reduce(xp.ascontiguousarray(x.T), axis=0)


def row_sum(x, out=None):
    """Sum of each row of a 2-D float array, shape ``(n,)`` (into ``out`` if given): one
    matrix-vector product with ones (BLAS), ~2x faster than ``x.sum(axis=1)`` at 32 x 10 and ~6x
    at 512 x 10."""
    xp = np if type(x) is np.ndarray else get_array_module(x)
    return xp.matmul(x, _constant(xp, x.shape[1], x.dtype), out=out)


# -- ReLU: max against a zero array --------------------------------------------------------------------
_ZEROS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # layer -> read-only zeros


def _memory_order(x):
    """The axes of ``x`` from outermost to innermost in memory when ``x`` is compact (each axis
    steps over all the axes inside it; batch axis outermost), else None."""
    strides = x.strides
    if not strides or strides[0] < max(strides):
        return None
    order = sorted(range(x.ndim), key=lambda i: -strides[i])
    step = x.itemsize
    for i in reversed(order):
        if x.shape[i] != 1 and strides[i] != step:
            return None
        step *= x.shape[i]
    return order


def _zeros_like_layout(layer, x):
    """Zeros shaped and laid out like a float array ``x`` (a view of a buffer kept per layer), else 0.

    NumPy's SIMD maximum loop takes two arrays of one memory layout; against a broadcast scalar
    it runs ~2.5x slower (float32, NumPy 2.4). The zeros follow ``x``'s axis order, so an NCHW
    view of channels-last data (Conv2D's output) stays channels-last, and come from ``zeros`` of
    that order, so large buffers stay on the kernel's shared zero page (no resident memory).
    Non-float and strided (non-compact) inputs take the scalar.
    """
    zeros = _ZEROS.get(layer)
    if (zeros is None or type(zeros) is not type(x) or zeros.strides != x.strides or zeros.dtype != x.dtype
            or zeros.shape[1:] != x.shape[1:] or len(zeros) < len(x)):
        if x.dtype.kind != "f":
            return 0
        order = _memory_order(x)
        if order is None:
            return 0
        xp = get_array_module(x)
        zeros = xp.zeros([x.shape[i] for i in order], x.dtype).transpose(np.argsort(order))
        if zeros.strides != x.strides:  # size-1 axes may carry any stride: copy x's exactly
            zeros = xp.lib.stride_tricks.as_strided(zeros, x.shape, x.strides, writeable=False)
        if isinstance(zeros, np.ndarray):
            zeros.flags.writeable = False
        _ZEROS[layer] = zeros
    return zeros[:len(x)]


def relu_forward(layer, x, training):
    # (below ~1,000 values the scalar costs no more than the buffer's checks)
    zeros = _zeros_like_layout(layer, x) if x.ndim and x.size >= 1024 else 0
    y = (np if type(x) is np.ndarray else get_array_module(x)).maximum(x, zeros)
    layer._cache = y if training else None
    return y


def relu_in_place(layer, x, training=False):
    """``ReLU`` at inference, written over its input: for an input that is the step's own (see
    ``infers_fresh``). A new array per layer is fresh memory, whose page faults were measured to cost
    ~25% of an MLP's inference at batch 1,000."""
    layer._cache = None
    if not x.flags.writeable:
        return relu_forward(layer, x, False)
    zeros = _zeros_like_layout(layer, x) if x.ndim and x.size >= 1024 else 0
    return (np if type(x) is np.ndarray else get_array_module(x)).maximum(x, zeros, out=x)


# -- Dense and Maxout: products by np.dot, no input gradient for the lowest layer, plain SGD inside
# the product ---------------------------------------------------------------------------------------
# (dot, not matmul: both are one GEMM for 2-D operands, but dot's call costs ~0.4 us less, which
# shows on small batches: three products per pass at batch 8 are ~1 us of a ~100 us step; the
# array's own method serves NumPy and CuPy arrays alike without a lookup)
def dense_forward(layer, x, training):
    if x.ndim != 2 or not layer.built or x.shape[1] != layer.in_features:
        return layer.forward(x, training)  # builds the layer, or names the wrong shape
    y = x.dot(layer.params["W"])
    if layer.use_bias:
        y += layer.params["b"]
    layer._cache = x if training else None
    return y


def dense_backward(layer, dy, need_dx, step):
    x = layer._cache
    if x is None:
        layer._require_cache()  # raises, naming the layer
    xp = np if type(dy) is np.ndarray else get_array_module(dy)
    W = layer.params["W"]
    dx = dy.dot(W.T) if need_dx else None  # first: a direct step (below) changes W
    if step is not None and blas.worth_direct(W):
        blas.add_at_b(step, x, dy, W)  # W += step * x^T dy in one GEMM, no gradient array
    else:
        # np.dot, not np.matmul: with one sample (K = 1) matmul skips BLAS and is ~7x slower, dot is
        # one GEMM at every batch size; it needs an output of the operands' dtype
        gW = layer.grads["W"]
        if x.dtype == dy.dtype == gW.dtype:
            xp.dot(x.T, dy, out=gW)
        else:
            xp.matmul(x.T, dy, out=gW)
        if step is not None:  # SGD's update (``g *= -lr; p += g``), while gW is still in cache
            gW *= step
            W += gW
    if layer.use_bias:
        if step is not None:  # b += step * (sum of dy over the batch): one matrix-vector product
            layer.params["b"] += dy.T.dot(_constant(xp, len(dy), dy.dtype, step))
        else:
            xp.add.reduce(dy, axis=0, out=layer.grads["b"])
    return dx


def maxout_backward(layer, dy, need_dx, step):
    return dense_backward(layer, layer._route(dy), need_dx, step)


# -- Conv2D: Winograd for 3x3 kernels, no input gradient for the lowest layer, bias gradient as a
# BLAS product ------------------------------------------------------------------------------------
def _column_sums(rows):
    # column sums of dY as a product with ones: ~10x faster than sum(axis=0) on this tall matrix
    return row_sum(rows.T)


def conv_forward(layer, x, training):
    """Winograd F(2x2, 3x3) for 3x3, stride-1 convolutions of enough channels and an even output size
    (``winograd.applies``), else the layer's im2col forward."""
    if x.ndim == 4 and layer.built and x.shape[1] == layer.in_channels and winograd.applies(layer, x):
        return winograd.forward(layer, x, training)
    return layer.forward(x, training)


def conv_backward(layer, dy, need_dx, step):
    cache = layer._require_cache()
    layer._cache = None
    if isinstance(cache, winograd.Cache):
        return winograd.backward(layer, cache, dy, need_dx, _column_sums)
    cols, x_shape, pads = cache
    dym = layer._dy_rows(dy)
    layer._fill_grads(cols, dym, _column_sums(dym) if layer.use_bias else None)
    return layer._input_grad(cols, dym, x_shape, pads) if need_dx else None


# -- batch normalization: per-channel sums as BLAS products; statistics summed across the threads of a
# split batch ------------------------------------------------------------------------------------------
def _channel_rows(a):
    """``a`` (``(N, C)``, or ``(N, C, H, W)`` stored channels-last as Conv2D hands it on) as the
    ``(rows, C)`` matrix over its memory (a view), else None. Per-channel sums of that matrix are one
    matrix-vector product, several times faster than NumPy's reduction over axes (0, 2, 3)."""
    if type(a) is not np.ndarray or a.dtype.kind != "f":
        return None
    if a.ndim == 2:
        return a if a.flags.c_contiguous else None
    if a.ndim == 4:
        t = a.transpose(0, 2, 3, 1)
        return t.reshape(-1, a.shape[1]) if t.flags.c_contiguous else None
    return None


def _like(rows, a):
    """The ``(rows, C)`` matrix ``rows`` shaped as ``a`` (NCHW view of channels-last memory for images)."""
    if a.ndim == 2:
        return rows
    n, c, h, w = a.shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _allsum(sync, value):
    return value if sync is None else sync[0].allsum(sync[1], value)


class _Centered:
    """What the engine's batch-norm forward keeps for backward on channels-last memory: ``xc``, the
    input minus the mean of this thread's share, as ``(rows, C)`` (``like``: the input's shape over
    it); ``shift``, the batch mean minus that mean (None on one thread, where it is zero);
    ``inv_std``; ``m``. The normalized input ``xhat = (xc - shift) * inv_std`` is never written out:
    forward computes ``y = xc * (gamma inv_std) + (beta - shift gamma inv_std)`` and backward folds
    the same per-channel factors into its passes, consuming the cache (it overwrites ``xc``)."""

    __slots__ = ("xc", "like", "shift", "inv_std", "m")

    def __init__(self, xc, like, shift, inv_std, m):
        self.xc, self.like, self.shift, self.inv_std, self.m = xc, like, shift, inv_std, m


def _moments(X, xc, m, sync, squares):
    """``(mean, var, shift)`` per column of the whole batch, having written ``X`` minus this share's own
    column means into ``xc`` (``squares``: room for a temporary of ``X``'s shape).

    One thread: ``mean`` and ``var`` are the two-pass ones of the plain code, ``shift`` is None. On a
    split batch each thread sums its share and its squared deviations from its own mean ``M2_i``, and
    one exchange gives the batch's: ``M2 = sum(M2_i + n_i (mean_i - mean)^2)`` (Chan, Golub & LeVeque),
    as stable as the two passes and one synchronization instead of two."""
    n = len(X)
    s = row_sum(X.T)
    own_mean = s / X.dtype.type(n)
    w = _Wide(X)
    np.subtract(w(X), w.tile(own_mean), out=w(xc))
    M2 = row_sum(np.multiply(xc, xc, out=squares).T)
    if sync is None:
        return own_mean, M2 / X.dtype.type(m), None
    parts = sync[0].gather(sync[1], (n, s, M2))  # every thread adds up the same parts in the same order
    mean = sum(p[1] for p in parts) / X.dtype.type(m)
    total = None
    for k, s_k, M2_k in parts:
        d = s_k / X.dtype.type(k) - mean
        term = M2_k + X.dtype.type(k) * d * d
        total = term if total is None else total + term
    return mean, total / X.dtype.type(m), mean - own_mean


def batchnorm_forward(layer, x, training, sync=None):
    """``BatchNorm.forward``; with ``sync = (SyncGroup, thread index)`` on a thread's share of a split
    batch, the statistics are those of the whole batch (synchronized across the threads)."""
    X = _channel_rows(x) if training else None
    if X is None and (not training or sync is None):
        return layer.forward(x, training)
    layer._check_input(x)
    if X is None and type(x) is np.ndarray and x.dtype.kind == "f" and x.ndim in (2, 4):
        # a share without a matrix view, on a split batch: a channels-last copy, so that every thread
        # takes the same path and makes the same exchanges (shares of one batch may differ in layout:
        # a one-sample share is contiguous in any order)
        X = np.ascontiguousarray(x if x.ndim == 2 else x.transpose(0, 2, 3, 1)).reshape(-1, x.shape[1])
    c = len(layer.params["gamma"])
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    # values per channel in the whole batch: this share's per sample times all the threads' samples
    m = x.size // c if sync is None else x.size // (c * len(x)) * sync[0].samples
    if X is None:  # another array type, dtype or rank, on a split batch (the same for every share)
        xp = get_array_module(x)
        mean = _allsum(sync, x.sum(axis=axes)) / m
        xc = x - mean.reshape(bshape)
        var = _allsum(sync, (xc * xc).sum(axis=axes)) / m
        inv_std = 1.0 / xp.sqrt(var + x.dtype.type(layer.eps))
        xhat = xc * inv_std.reshape(bshape)
        y = xhat * layer.params["gamma"].reshape(bshape) + layer.params["beta"].reshape(bshape)
        layer._cache = (xhat, inv_std, axes, bshape, m)
    else:
        xc = buffers.kept(layer, "centered", X.shape, X.dtype)  # the cache, until backward
        y = np.empty_like(X)  # holds the squares first: no temporary of the map's size
        mean, var, shift = _moments(X, xc, m, sync, y)
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(layer.eps))
        scale = layer.params["gamma"] * inv_std
        offset = layer.params["beta"] if shift is None else layer.params["beta"] - shift * scale
        # per-channel vectors are tiled to whole rows of a wider view (``_Wide``): NumPy broadcasts a
        # C-vector over short rows of C values ~1.5x slower than over rows of ~1,000
        w = _Wide(X)
        np.multiply(w(xc), w.tile(scale), out=w(y))
        w(y)[...] += w.tile(offset)
        layer._cache = _Centered(xc, _like(xc, x), shift, inv_std, m)
        y = _like(y, x)
    if sync is None or sync[1] == 0:  # one thread updates the running statistics
        layer._update_running(mean, var, m)
    return y


def _column_dots(A, B):
    """Per-column sums of ``A * B`` for two ``(rows, C)`` matrices: blocks of rows multiplied into a
    temporary of 2**19 values (2 MB in float32: it stays in cache), each summed by a matrix-vector
    product."""
    rows, c = A.shape
    block = max(1, (1 << 19) // c)
    t = buffers.scratch("products", (min(rows, block), c), A.dtype)
    total = None
    for a in range(0, rows, block):
        b = min(rows, a + block)
        part = row_sum(np.multiply(A[a:b], B[a:b], out=t[:b - a]).T)
        total = part if total is None else total + part
    return total


def batchnorm_backward(layer, dy, need_dx, step, sync=None, owned=False):
    """``BatchNorm.backward``; with ``owned`` (the plan's word that ``dy`` is a fresh array of the step
    that nothing else refers to: a library layer's input gradient) the input gradient is computed in
    ``dy``'s memory."""
    cache = layer._require_cache()
    if type(cache) is not _Centered:  # the plain forward's cache
        return _batchnorm_backward_cached(layer, dy, need_dx, sync, *cache)
    Xc, shift, inv_std, m = cache.xc, cache.shift, cache.inv_std, cache.m
    D = _channel_rows(dy)
    if D is None:  # dy in another layout: one copy into channels-last rows, ours to overwrite (unless
        # dy was such rows already, as an ndarray subclass: then no copy is made)
        D = np.ascontiguousarray(dy if dy.ndim == 2 else dy.transpose(0, 2, 3, 1)).reshape(Xc.shape)
        owned = owned or not np.may_share_memory(D, dy)
    layer._cache = None  # consumed: xc is overwritten below
    dbeta = row_sum(D.T)
    # sum(dy xhat) = inv_std (sum(dy xc) - shift sum(dy))
    dgamma = _column_dots(D, Xc)
    if shift is not None:
        dgamma -= shift * dbeta
    dgamma *= inv_std
    layer.grads["beta"][...] = dbeta
    layer.grads["gamma"][...] = dgamma
    if not need_dx:
        return None
    c = len(inv_std)
    # whole-batch sums; this thread's grads keep its own share (added up later)
    sums = _allsum(sync, np.concatenate((dbeta, dgamma)))
    dbeta, dgamma = sums[:c], sums[c:]
    # dx = gamma / (m sigma) * (m dy - sum(dy) - xhat * sum(dy xhat)),  xhat = (xc - shift) inv_std
    #    = (k m) dy - (k inv_std sum(dy xhat)) xc + k (inv_std sum(dy xhat) shift - sum(dy)),
    # with k = gamma inv_std / m
    k = layer.params["gamma"] * inv_std / D.dtype.type(m)
    b = k * inv_std * dgamma
    w = _Wide(D)
    dx = D if owned and D.flags.writeable else np.empty_like(D)
    np.multiply(w(D), w.tile(k * D.dtype.type(m)), out=w(dx))
    # xc (this layer's own buffer, not needed after this) becomes the rest: -b xc + constant
    np.multiply(w(Xc), w.tile(-b), out=w(Xc))
    w(Xc)[...] -= w.tile(k * dbeta if shift is None else k * dbeta - b * shift)
    dx += Xc
    return _like(dx, cache.like)


def _batchnorm_backward_cached(layer, dy, need_dx, sync, xhat, inv_std, axes, bshape, m):
    """Backward after the plain forward (or the engine's forward on a layout without a matrix view)."""
    Xh = _channel_rows(xhat)
    if Xh is None:
        return _batchnorm_backward_axes(layer, dy, need_dx, sync, xhat, inv_std, axes, bshape, m)
    D = _channel_rows(dy)
    if D is None:  # dy in another layout than xhat: one copy into xhat's
        D = np.ascontiguousarray(dy if dy.ndim == 2 else dy.transpose(0, 2, 3, 1)).reshape(Xh.shape)
    t = np.multiply(D, Xh, out=buffers.scratch("products", D.shape, D.dtype))
    layer.grads["beta"][...] = row_sum(D.T)
    layer.grads["gamma"][...] = row_sum(t.T)
    if not need_dx:
        return None
    c = len(inv_std)
    # whole-batch sums; this thread's grads keep its own share (added up later)
    sums = _allsum(sync, np.concatenate((layer.grads["beta"], layer.grads["gamma"])))
    dbeta, dgamma = sums[:c], sums[c:]
    # dx = gamma / (m sigma) * (m dy - sum(dy) - xhat * sum(dy xhat)),
    #    = (k m) dy - (k sum(dy xhat)) xhat - k sum(dy)  with k = gamma / (m sigma)
    k = layer.params["gamma"] * inv_std / m
    w = _Wide(D)
    dx = np.empty_like(D)
    np.multiply(w(D), w.tile(k * D.dtype.type(m)), out=w(dx))
    np.multiply(w(Xh), w.tile(k * dgamma), out=w(t))
    dx -= t
    w(dx)[...] -= w.tile(k * dbeta)
    return _like(dx, xhat)


class _Wide:
    """Views of ``(rows, C)`` matrices as ``(rows / r, r * C)`` with rows of about 1,000 values, and
    per-channel vectors tiled to match (``r`` divides the row count)."""

    def __init__(self, X):
        rows, c = X.shape
        self.r = math.gcd(rows, max(1, 1024 // max(c, 1)))
        self.shape = (rows // self.r, self.r * c)

    def __call__(self, a):
        return a.reshape(self.shape)

    def tile(self, v):
        return np.tile(v, self.r)


def _batchnorm_backward_axes(layer, dy, need_dx, sync, xhat, inv_std, axes, bshape, m):
    layer.grads["beta"][...] = dy.sum(axis=axes)
    layer.grads["gamma"][...] = (dy * xhat).sum(axis=axes)
    if not need_dx:
        return None
    c = len(inv_std)
    sums = _allsum(sync, get_array_module(dy).concatenate((layer.grads["beta"], layer.grads["gamma"])))
    dbeta, dgamma = sums[:c].reshape(bshape), sums[c:].reshape(bshape)
    k = (layer.params["gamma"] * inv_std / m).reshape(bshape)
    return k * (m * dy - dbeta - xhat * dgamma)


# -- softmax cross-entropy from integer labels in one pass ----------------------------------------
def softmax_cross_entropy(loss, z, target, rows=None):
    """``SoftmaxCrossEntropy()(z, target)`` for integer labels, the softmax and its gradient computed
    in place in one buffer; labels are not checked again (``fit`` checked them once).

    With ``rows = (s, zy)``, two arrays of ``len(z)`` values, the loss is not reduced: each sample's
    ``s = sum(exp(z - max z))`` and ``zy = z_y - max z`` are written there (its loss is
    ``log(s) - zy``; ``engine.record`` sums them once per epoch), and the value returned is only a
    probe, the sum of ``zy``: finite exactly when every sample's loss is (a NaN or +inf logit makes
    the row's maximum, hence its ``zy``, non-finite; a -inf target logit makes ``zy`` -inf), or
    when a float32 sum of huge losses overflows, as the per-step value would; the caller then
    decides on ``EpochRecord.batch_loss``."""
    if z.ndim != 2 or getattr(target, "ndim", 0) != 1 or len(target) != len(z):
        if rows is not None:
            raise InvalidArgumentError(f"softmax_cross_entropy: rows need (n, classes) logits and n labels, "
                                       f"received {z.shape} and {getattr(target, 'shape', None)}")
        return loss(z, target)
    xp = np if type(z) is np.ndarray else get_array_module(z)
    n, c = z.shape
    e = z - row_max(z)[:, None]  # shifted logits, max 0: exp cannot overflow
    if not e.flags.c_contiguous:  # (Fortran-ordered logits) flat must be a view of e
        e = xp.ascontiguousarray(e)
    flat = e.reshape(-1)
    hit = _row_starts(xp, n, c) + target  # flat positions of e[i, y_i]
    zy = flat[hit] if rows is None else flat.take(hit, out=rows[1], mode="clip")
    xp.exp(e, out=e)
    s = row_sum(e, None if rows is None else rows[0])
    e /= s[:, None]  # softmax
    flat[hit] -= 1  # fused gradient (p - onehot(y)) / n
    e *= 1.0 / n
    if rows is not None:
        return float(xp.add.reduce(zy)), e
    return float(xp.add.reduce(xp.log(s, out=s)) - xp.add.reduce(zy)) / n, e  # mean of logsumexp(z) - z_y


_STARTS: dict = {}


def _row_starts(xp, n, c):
    """``[0, c, 2c, ...]`` (``n`` entries): where each row of an ``(n, c)`` array starts once flattened."""
    starts = _STARTS.get((xp, c))
    if starts is None or len(starts) < n:
        starts = _STARTS[(xp, c)] = xp.arange(max(n, 1)) * c
    return starts[:n]


register_kernel(ReLU, forward=relu_forward)
register_kernel(Dense, forward=dense_forward, backward=dense_backward, direct_keys=("W", "b"))
register_kernel(Maxout, backward=maxout_backward, direct_keys=("W", "b"))
register_kernel(Conv2D, forward=conv_forward, backward=conv_backward)
register_kernel(BatchNorm, forward=batchnorm_forward, backward=batchnorm_backward)
register_kernel(BatchNorm2D, forward=batchnorm_forward, backward=batchnorm_backward)
LOSSES[SoftmaxCrossEntropy] = softmax_cross_entropy
SYNCED.update({BatchNorm, BatchNorm2D})
SAMPLE_WISE.update(cls for cls in LAYERS.values() if cls not in SYNCED)  # the library's own (registered) layers
# the library's own layer classes and backward kernels (registered before any user code runs)
_OWN_BACKWARD = {cls: BACKWARD.get(cls) for cls in LAYERS.values()}
_OWN_FORWARD = {cls: FORWARD.get(cls) for cls in LAYERS.values()}


#: the library's layers whose inference forward may return its input, or a view of it
_PASS_THROUGH = frozenset(cls for cls in LAYERS.values() if cls.__name__ in
                          ("Flatten", "Reshape", "Dropout", "RandomShift", "RandomFlip"))


def infers_fresh(layer, input_is_fresh) -> bool:
    """Whether ``layer``'s inference forward returns an array nothing else refers to, given whether its
    input is one: the library's own layers and kernels compute new arrays, or pass their input on
    (``Flatten``, ``Dropout``, ...); a layer or kernel of your own may return what it keeps."""
    cls = type(layer)
    if cls not in _OWN_FORWARD or FORWARD.get(cls) is not _OWN_FORWARD[cls]:
        return False
    return input_is_fresh if cls in _PASS_THROUGH else True


def returns_fresh(layer) -> bool:
    """Whether the engine's backward of ``layer`` returns a fresh array that nothing keeps a reference
    to, so the layer below may overwrite it: true of the library's own layers with the library's
    kernels (a layer or kernel of your own may keep what it returns)."""
    cls = type(layer)
    return cls in _OWN_BACKWARD and BACKWARD.get(cls) is _OWN_BACKWARD[cls]
