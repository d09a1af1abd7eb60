"""3x3 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2015): the engine's
kernel for ``Conv2D`` with a 3x3 kernel and stride 1. Same result as the layer's im2col product
(to float rounding), with 2.25x fewer multiplications in each of the three products.

**The 1-D idea, F(2, 3).** Two outputs of a 3-tap correlation, ``y0 = d0 g0 + d1 g1 + d2 g2`` and
``y1 = d1 g0 + d2 g1 + d3 g2``, take 6 multiplications directly but only 4 as

    y = A^T [(G g) * (B^T d)]        (``*`` elementwise)

with ``B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)``, ``G g = (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2)``
and ``A^T m = (m0 + m1 + m2, m1 - m2 - m3)``. Nested on rows and columns it gives F(2x2, 3x3): a 2x2
output tile from a 4x4 input tile as ``A^T [(G g G^T) * (B^T d B)] A``, 16 multiplications instead of
36. Summed over input channels, the 16 elementwise products become 16 matrix products:

    M[k] = V[k] @ U[k],   V[k]: (tiles, C) input transforms,  U[k]: (C, F) filter transforms.

**Backward, by transposing the same algorithm.** ``y`` is linear in each of ``V`` and ``U``, so with
``D = A dY A^T`` (the 2x2 output-gradient tiles taken to 4x4, ``A = (A^T)^T``):

- weight gradient: ``dU[k] = V[k]^T @ D[k]``, then ``dW = G^T dU G`` (3x3 from 4x4);
- input gradient: ``dV[k] = D[k] @ U[k]^T``, then each input tile receives ``B dV B^T``, and
  neighbouring tiles (which overlap by two rows or columns) add up.

``V`` computed in the forward pass is kept for the weight gradient instead of an im2col buffer
(16 values per tile and channel instead of 36). Every transform is written as explicit additions of
strided views of channels-last arrays, which NumPy runs as a few fast passes; written as
``tensordot`` with the 4x4 matrices the same transforms were measured ~2x slower than im2col.

Used when the layer's input has at least ``MIN_CHANNELS`` channels (with fewer, the products are
too thin for the transforms to pay: the first convolution of an image network takes im2col) and its
output's height and width are even (``EVEN_OUTPUTS_ONLY``: odd sizes waste part of their tiles).
``tests/test_winograd.py`` checks it against the im2col path in float64 and float32.
"""
from __future__ import annotations

import numpy as np

from . import buffers

#: fewest input channels for which the Winograd path is used. Measured at batch 64, 14x14, 64 filters,
#: one thread, forward + backward: 8 channels 6.4 ms (im2col 6.1), 16 channels 8.9 ms (im2col 11.2)
MIN_CHANNELS = 16

# G (4x3): the filter transform U = G g G^T. The output-gradient transform below skips two sign
# flips (its rows and columns 3 are stored negated), which the backward passes undo by using
# G_S = S G and B S instead of G and B, with S = diag(1, 1, 1, -1).
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_G_S = _G * np.array([[1.0], [1.0], [1.0], [-1.0]])


#: only outputs of even height and width take the Winograd path. An odd size is computed as the next
#: even one (whole 2x2 tiles), which wastes 31% more work at 7x7; measured on Dec 6 (2-core AVX-512
#: machine, batch 64, one thread), 64 -> 128 channels at 7x7: forward 4.6 ms by Winograd, 3.8 ms by
#: im2col, backward 7.8 ms both; the cnn-bn preset's step 48-49 ms instead of 53-55 ms
EVEN_OUTPUTS_ONLY = True


def applies(layer, x) -> bool:
    """Whether ``layer`` (a built Conv2D) on input ``x`` takes the Winograd path."""
    if not (layer.kernel_size == (3, 3) and layer.stride == (1, 1) and type(x) is np.ndarray
            and x.dtype.kind == "f" and x.dtype == layer.params["W"].dtype and x.shape[1] >= MIN_CHANNELS):
        return False
    if EVEN_OUTPUTS_ONLY:
        _, (ho, wo) = layer._geometry(x.shape[1:])
        return ho % 2 == 0 and wo % 2 == 0
    return True


# large temporaries are reused from step to step (see ``buffers``)
_scratch = buffers.scratch


def _sandwich(L, core, R_T):
    """``L core R`` over the first two axes of ``core`` (``(k, k, C, F)``): ``L`` is ``(m, k)``, ``R_T``
    is ``R`` transposed, ``(m, k)``; shape ``(m, m, C, F)``."""
    k, _, c, f = core.shape
    t = np.matmul(L, core.reshape(k, k * c * f)).reshape(len(L), k, c, f)  # rows
    t = np.matmul(R_T, t.transpose(1, 0, 2, 3).reshape(k, -1)).reshape(len(R_T), len(L), c, f)  # columns
    return t.transpose(1, 0, 2, 3)


def filter_transform(W):
    """``U = G g G^T`` for every (filter, channel) pair of ``W`` (F, C, 3, 3): shape ``(16, C, F)``."""
    G = _G.astype(W.dtype)
    u = _sandwich(G, W.transpose(2, 3, 1, 0), G)  # (4, 4, C, F)
    return np.ascontiguousarray(u).reshape(16, W.shape[1], W.shape[0])


# A padded plane of 2t + 2 rows is kept "split" by parity: even rows (t + 1 of them) and odd rows.
# Tile t covers rows 2t .. 2t+3 = even[t], odd[t], even[t+1], odd[t+1]: whole contiguous slabs,
# where taking every other row of an interleaved array would give NumPy short strided runs.
def _split(name, n, th, tw, c, dtype):
    """A plane of ``(2*th + 2) x (2*tw + 2)`` channels-last pixels in split layout (a reused buffer):
    ``(N, row parity, th + 1, column parity, tw + 1, C)``."""
    return _scratch(name, (n, 2, th + 1, 2, tw + 1, c), dtype)


def _parity_slices(start, size):
    """For ``size`` consecutive positions placed from ``start`` in a plane: ``(parity, first source
    index, first tile, count)`` for each of the two parities."""
    out = []
    for p in (0, 1):
        s0 = (p - start) % 2
        count = len(range(s0, size, 2))
        out.append((p, s0, (s0 + start) // 2, count))
    return out


def _scatter(x, S, top, left):
    """Writes the channels-last image ``x`` ``(N, H, W, C)`` into the split plane ``S`` at ``(top, left)``,
    zeros around it."""
    h, w = x.shape[1:3]
    for p, r0, i0, nr in _parity_slices(top, h):
        S[:, p, :i0] = 0
        S[:, p, i0 + nr:] = 0
        for q, c0, j0, nc in _parity_slices(left, w):
            S[:, p, i0:i0 + nr, q, :j0] = 0
            S[:, p, i0:i0 + nr, q, j0 + nc:] = 0
            S[:, p, i0:i0 + nr, q, j0:j0 + nc] = x[:, r0::2, c0::2]


def _gather(S, out, top, left):
    """``out`` ``(N, H, W, C)`` = the pixels of the split plane ``S`` from ``(top, left)`` on."""
    h, w = out.shape[1:3]
    for p, r0, i0, nr in _parity_slices(top, h):
        for q, c0, j0, nc in _parity_slices(left, w):
            out[:, r0::2, c0::2] = S[:, p, i0:i0 + nr, q, j0:j0 + nc]
    return out


# B^T's rows as operations on a tile's four rows d0..d3: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
_BT = ((np.subtract, 0, 2), (np.add, 1, 2), (np.subtract, 2, 1), (np.subtract, 1, 3))


def _tile_rows(even, odd, t):
    """The four rows ``(even[i], odd[i], even[i+1], odd[i+1])`` of every tile ``i`` along axis 1 of a
    split plane, as four views."""
    return even[:, :t], odd[:, :t], even[:, 1:], odd[:, 1:]


def _bt(even, odd, t, out):
    """``B^T`` along the tile axis (axis 1) of a split plane: ``out[0..3]`` of every tile."""
    d = _tile_rows(even, odd, t)
    for o, (op, a, b) in zip(out, _BT):
        op(d[a], d[b], out=o)


def input_transform(S, n, th, tw, V):
    """``V = B^T d B`` of every 4x4 tile of the split plane ``S`` (tiles overlap by two pixels):
    ``V`` ``(16, N * th * tw, C)``, index ``4 * row + column``."""
    c = S.shape[-1]
    d = _tile_rows(S[:, 0].reshape(n, th + 1, -1), S[:, 1].reshape(n, th + 1, -1), th)
    row = _scratch("row", (n * th, 2, tw + 1, c), S.dtype)
    rows = row.reshape(n, th, -1)
    V = V.reshape(4, 4, n * th, tw, c)
    # B^T on rows, one combination at a time (to keep one row buffer), each followed by B^T on its columns
    for i, (op, a, b) in enumerate(_BT):
        op(d[a], d[b], out=rows)
        _bt(row[:, 0], row[:, 1], tw, V[i])
    return V.reshape(16, n * th * tw, c)


def _at_in_place(m0, m1, m2, m3):
    """``A^T`` on four rows, in place: ``m0 <- m0 + m1 + m2``, ``m3 <- m1 - m2 - m3``."""
    np.subtract(m1, m3, out=m3)
    m3 -= m2
    m0 += m1
    m0 += m2


# A^T's rows are (1, 1, 1, 0) and (0, 1, -1, -1): how tile row k of the products enters output rows 0, 1
_A_T = ((1, 0), (1, 1), (1, -1), (0, -1))


def products_and_output(V, U, n, th, tw, bias, out):
    """The 16 products ``M[k] = V[k] @ U[k]`` and ``Y = A^T M A`` of every tile plus ``bias`` (or
    None) into ``out`` ``(N, 2*th, 2*tw, F)``, four products (one tile row) at a time."""
    f = U.shape[-1]
    p = V.shape[1]
    m = _scratch("products", (4, p, f), V.dtype)
    Y = _scratch("outputs", (2, 2, p, f), V.dtype)
    started = [False, False]
    for k in range(4):
        np.matmul(V[4 * k:4 * k + 4], U[4 * k:4 * k + 4], out=m)
        _at_in_place(*m)  # A on the columns: output columns 0 and 1 in m[0], m[3]
        for i, sign in enumerate(_A_T[k]):
            if not sign:
                continue
            for j, part in ((0, m[0]), (1, m[3])):
                if not started[i]:  # the first contribution (always +1) brings the bias
                    if bias is None:
                        Y[i, j] = part
                    else:
                        np.add(part, bias, out=Y[i, j])
                elif sign > 0:
                    Y[i, j] += part
                else:
                    Y[i, j] -= part
            started[i] = True
    # interleave the four outputs of every tile: out[:, 2a + i, 2b + j] = Y[i, j][:, a, b]
    out.reshape(n, th, 2, tw, 2, f)[...] = Y.reshape(2, 2, n, th, tw, f).transpose(2, 3, 0, 4, 1, 5)
    return out


def backward_products(dy, V, U, n, th, tw, need_dx):
    """From the channels-last output gradient ``dy`` ``(N, 2*th, 2*tw, F)``: ``dU[k] = V[k]^T D[k]``
    ``(16, C, F)`` and, when ``need_dx``, ``dV[k] = D[k] U[k]^T`` written over ``V`` (no longer needed),
    four ``k`` at a time, with ``D = A dY A^T`` of every 2x2 tile (rows and columns 3 negated, see
    ``_G_S``)."""
    f = dy.shape[-1]
    p = V.shape[1]
    # the four pixels of every tile, as four contiguous planes q[a, b] = dy[:, a::2, b::2]
    q = _scratch("outputs", (2, 2, n, th, tw, f), dy.dtype)
    q[...] = dy.reshape(n, th, 2, tw, 2, f).transpose(2, 4, 0, 1, 3, 5)
    d = _scratch("products", (4, n, th, tw, f), dy.dtype)
    dU = np.empty((16,) + U.shape[1:], dy.dtype)
    # rows of A: (1, 0), (1, 1), (1, -1) and (0, -1), stored as (0, 1)
    for k, op in enumerate((None, np.add, np.subtract, None)):
        for j, b in ((0, 0), (3, 1)):  # columns 0 and 3 of the tile row, then 1 and 2 from them
            if op is None:
                d[j] = q[0 if k == 0 else 1, b]
            else:
                op(q[0, b], q[1, b], out=d[j])
        np.add(d[0], d[3], out=d[1])
        np.subtract(d[0], d[3], out=d[2])
        D = d.reshape(4, p, f)
        np.matmul(V[4 * k:4 * k + 4].transpose(0, 2, 1), D, out=dU[4 * k:4 * k + 4])
        if need_dx:
            np.matmul(D, U[4 * k:4 * k + 4].transpose(0, 2, 1), out=V[4 * k:4 * k + 4])
    return dU


def _b_adjoint(E, even, odd):
    """``B S`` along the tile axis (axis 1), with overlapping tiles added: tile ``t`` gives its rows
    ``2t .. 2t+3`` (``even[t], odd[t], even[t+1], odd[t+1]``) ``(E0, E1 - E2 - E3, E1 + E2 - E0, E3)``
    (``B``'s columns, with ``E3``'s sign restored)."""
    t = E[0].shape[1]
    tmp = np.add(E[1], E[2], out=_scratch("products", E[1].shape, E[1].dtype))
    tmp -= E[0]
    even[:, :t] = E[0]
    even[:, t] = 0
    even[:, 1:] += tmp
    np.subtract(E[1], E[2], out=tmp)
    np.subtract(tmp, E[3], out=odd[:, :t])
    odd[:, t] = 0
    odd[:, 1:] += E[3]


def input_grad(dV, n, th, tw):
    """``B dV B^T`` of every tile, added up where tiles overlap: the input gradient as a split plane.
    ``dV``: ``(16, N * th * tw, C)`` (rows and columns 3 negated, as ``backward_products`` leaves them)."""
    c = dV.shape[-1]
    e = dV.reshape(4, 4, n * th, tw, c)
    S = _split("x", n, th, tw, c, dV.dtype)
    even, odd = S[:, 0].reshape(n, th + 1, -1), S[:, 1].reshape(n, th + 1, -1)
    col = _scratch("row", (n * th, 2, tw + 1, c), dV.dtype)
    C = col.reshape(n, th, -1)
    # tile row k, its columns assembled (B on columns), enters rows 2t .. 2t+3 (even[t], odd[t],
    # even[t+1], odd[t+1]) as column k of B S: (1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, -1, 0, 1)
    for k in range(4):
        _b_adjoint(e[k], col[:, 0], col[:, 1])
        if k == 0:
            even[:, :th] = C
            even[:, th] = 0
            even[:, 1:] -= C
        elif k == 1:
            even[:, 1:] += C
            odd[:, :th] = C
            odd[:, th] = 0
        elif k == 2:
            even[:, 1:] += C
            odd[:, :th] -= C
        else:
            odd[:, :th] -= C
            odd[:, 1:] += C
    return S


def weight_grad(dU):
    """``dW = G^T dU G`` (3x3 from 4x4): shape ``(F, C, 3, 3)`` (``dU`` from ``backward_products``)."""
    c, f = dU.shape[1:]
    GsT = _G_S.T.astype(dU.dtype)
    w = _sandwich(GsT, dU.reshape(4, 4, c, f), GsT)  # (3, 3, C, F)
    return w.transpose(3, 2, 0, 1)


# -- the Conv2D kernel ------------------------------------------------------------------------------------
class Cache:
    """What the Winograd forward keeps for backward: the input transforms ``V``, the filter
    transforms ``U``, the input shape, the padding and the tile grid."""

    __slots__ = ("V", "U", "x_shape", "pads", "tiles")

    def __init__(self, V, U, x_shape, pads, tiles):
        self.V, self.U, self.x_shape, self.pads, self.tiles = V, U, x_shape, pads, tiles


def _tiles(ho, wo):
    return (ho + 1) // 2, (wo + 1) // 2


def forward(layer, x, training):
    """``layer.forward(x, training)`` of a 3x3, stride-1 Conv2D (``applies`` is true)."""
    n, c, h, w = x.shape
    pads, (ho, wo) = layer._geometry(x.shape[1:])
    (pt, _), (pl, _) = pads
    th, tw = _tiles(ho, wo)
    S = _split("x", n, th, tw, c, x.dtype)  # the zero-padded input, extended to whole tiles
    _scatter(x.transpose(0, 2, 3, 1), S, pt, pl)
    vshape = (16, n * th * tw, c)
    V = input_transform(S, n, th, tw, buffers.kept(layer, "V", vshape, x.dtype) if training
                        else _scratch("V", vshape, x.dtype))
    U = filter_transform(layer.params["W"])
    y = products_and_output(V, U, n, th, tw, layer.params["b"] if layer.use_bias else None,
                            np.empty((n, 2 * th, 2 * tw, layer.filters), x.dtype))
    if (ho, wo) != y.shape[1:3]:  # odd output: the last tile row/column was extra
        y = np.ascontiguousarray(y[:, :ho, :wo])
    layer._cache = Cache(V, U, x.shape, pads, (th, tw)) if training else None
    return y.transpose(0, 3, 1, 2)


def backward(layer, cache, dy, need_dx, bias_grad):
    """Fills ``layer.grads`` from the output gradient ``dy`` and returns the input gradient (None when
    not ``need_dx``); ``bias_grad(rows)`` sums the rows of a channels-last ``(N*Ho*Wo, F)`` matrix."""
    n, c, h, w = cache.x_shape
    th, tw = cache.tiles
    (pt, _), (pl, _) = cache.pads
    ho, wo = dy.shape[2:]
    dyl = dy.transpose(0, 2, 3, 1)  # channels-last (a view when dy is, as Conv2D's outputs are)
    if (ho, wo) != (2 * th, 2 * tw) or not dyl.flags.c_contiguous:
        full = np.zeros((n, 2 * th, 2 * tw, dy.shape[1]), dy.dtype)
        full[:, :ho, :wo] = dyl
        dyl = full
    dU = backward_products(dyl, cache.V, cache.U, n, th, tw, need_dx)
    layer.grads["W"][...] = weight_grad(dU)
    if layer.use_bias:  # (the zero rows of an odd output add nothing)
        layer.grads["b"][...] = bias_grad(dyl.reshape(-1, dyl.shape[-1]))
    if not need_dx:
        return None
    S = input_grad(cache.V, n, th, tw)  # V now holds dV
    return _gather(S, np.empty((n, h, w, c), dy.dtype), pt, pl).transpose(0, 3, 1, 2)
