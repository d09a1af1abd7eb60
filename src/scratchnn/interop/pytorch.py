"""scratchnn <-> PyTorch, layer by layer (see ``scratchnn.interop``).

Importing this module imports PyTorch; ``scratchnn.interop.to_torch`` and ``from_torch`` do so on
first use. ``Maxout`` and ``Standardize`` below are the two modules PyTorch has no counterpart for.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import layers as L
from ..errors import InvalidArgumentError, InvalidTypeError
from ._common import assemble, check_exportable, clean_name, model_dtype, unsupported, window_pads, require

torch = require("torch", "torch", "PyTorch interop")
nn = torch.nn


class Maxout(nn.Module):
    """Maximum over each group of ``pieces`` consecutive features: ``(N, units * pieces) -> (N, units)``.

    Follows the ``Linear(in, units * pieces)`` it was exported with, as in scratchnn's ``Maxout``.
    """

    def __init__(self, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = int(units), int(pieces)

    def forward(self, x):
        return x.unflatten(1, (self.units, self.pieces)).amax(dim=2)

    def extra_repr(self):
        return f"units={self.units}, pieces={self.pieces}"


class Standardize(nn.Module):
    """``(x - mean) / std`` with fixed statistics (buffers), scratchnn's ``Standardize`` layer."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(np.asarray(mean)))  # copies: the model's arrays stay its own
        self.register_buffer("std", torch.tensor(np.asarray(std)))

    def forward(self, x):
        return (x - self.mean) / self.std


def _tensor(a):
    return torch.from_numpy(np.array(a, copy=True))


def _set(module, **arrays):
    for key, value in arrays.items():
        target = getattr(module, key)
        if isinstance(target, nn.Parameter):
            target.data = _tensor(value)
        else:
            setattr(module, key, _tensor(value))


def _pads_module(pads, value):
    """``nn.ZeroPad2d``/``ConstantPad2d`` taking ``((top, bottom), (left, right))``."""
    (t, b), (l, r) = pads
    return nn.ZeroPad2d((l, r, t, b)) if value == 0 else nn.ConstantPad2d((l, r, t, b), value)


def _symmetric(pads):
    (t, b), (l, r) = pads
    return t == b and l == r


def _bn_momentum(m):
    """PyTorch's momentum is the weight of the new batch: 1 - scratchnn's (and back)."""
    return round(1.0 - float(m), 12)


def _convert(layer, shape):
    """``[(suffix, module), ...]`` for one scratchnn layer with per-sample input ``shape``."""
    kind = type(layer)
    if kind is L.Maxout:
        lin = nn.Linear(layer.in_features, layer.units, bias=layer.use_bias)
        _set(lin, weight=layer.params["W"].T, **({"bias": layer.params["b"]} if layer.use_bias else {}))
        return [("", lin), ("max", Maxout(layer.maxout_units, layer.pieces))]
    if kind is L.Dense:
        lin = nn.Linear(layer.in_features, layer.units, bias=layer.use_bias)
        _set(lin, weight=layer.params["W"].T, **({"bias": layer.params["b"]} if layer.use_bias else {}))
        return [("", lin)]
    if kind is L.Conv2D:
        pads = window_pads(layer, shape)
        (t, _), (l, _) = pads
        sym = _symmetric(pads)
        conv = nn.Conv2d(layer.in_channels, layer.filters, layer.kernel_size, stride=layer.stride,
                         padding=(t, l) if sym else 0, bias=layer.use_bias)
        _set(conv, weight=layer.params["W"], **({"bias": layer.params["b"]} if layer.use_bias else {}))
        return [("", conv)] if sym else [("pad", _pads_module(pads, 0.0)), ("", conv)]
    if kind in (L.MaxPool2D, L.AvgPool2D):
        pads = window_pads(layer, shape)
        (t, _), (l, _) = pads
        sym = _symmetric(pads)
        padding = (t, l) if sym else 0
        if kind is L.MaxPool2D:
            pool, fill = nn.MaxPool2d(layer.pool_size, layer.stride, padding=padding), -float("inf")
        else:  # zeros count in the mean, in both libraries
            pool, fill = nn.AvgPool2d(layer.pool_size, layer.stride, padding=padding, count_include_pad=True), 0.0
        return [("", pool)] if sym else [("pad", _pads_module(pads, fill)), ("", pool)]
    if kind is L.GlobalAvgPool2D:
        return [("", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    if kind in (L.BatchNorm, L.BatchNorm2D):
        c = len(layer.params["gamma"])
        cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}.get(len(shape))
        if cls is None:
            raise InvalidArgumentError(f"export to PyTorch: {layer.label} on per-sample shape {shape} has no "
                                       "PyTorch batch norm (1 to 4 axes per sample)")
        bn = cls(c, eps=layer.eps, momentum=_bn_momentum(layer.momentum))
        _set(bn, weight=layer.params["gamma"], bias=layer.params["beta"],
             running_mean=layer.buffers["running_mean"], running_var=layer.buffers["running_var"])
        return [("", bn)]
    if kind is L.Dropout:
        return [("", nn.Dropout(layer.rate))]
    if kind is L.Flatten:
        return [("", nn.Flatten())]
    if kind is L.Reshape:
        target = tuple(layer.output_shape(shape))
        flat = [] if len(shape) == 1 else [("flatten", nn.Flatten())]
        return [*flat, ("", nn.Unflatten(1, target))]
    if kind is L.Standardize:
        return [("", Standardize(layer.buffers["mean"], layer.buffers["std"]))]
    if kind in (L.RandomShift, L.RandomFlip):
        return [("", nn.Identity())]  # training-only augmentation
    simple = {L.ReLU: lambda: nn.ReLU(), L.LeakyReLU: lambda: nn.LeakyReLU(layer.alpha),
              L.ELU: lambda: nn.ELU(layer.alpha), L.Sigmoid: lambda: nn.Sigmoid(), L.Tanh: lambda: nn.Tanh(),
              L.Softmax: lambda: nn.Softmax(dim=-1)}
    return [("", simple[kind]())]


def _child_name(name, taken):
    """A name PyTorch accepts for a child module (no dots, not a Module attribute), unique in ``taken``."""
    name = name.replace(".", "_") or "layer"
    if hasattr(nn.Module, name) or name in ("training",):
        name = f"layer_{name}"
    unique, i = name, 1
    while unique in taken:
        i += 1
        unique = f"{name}_{i}"
    taken.add(unique)
    return unique


def to_torch(model):
    entries, taken = [], set()
    for layer, shape in check_exportable(model, "PyTorch"):
        for suffix, module in _convert(layer, shape):
            if not layer.trainable:  # a frozen layer stays frozen
                module.requires_grad_(False)
            entries.append((_child_name(f"{layer.name}_{suffix}" if suffix else layer.name, taken), module))
    module = nn.Sequential(OrderedDict(entries))
    return module.to(torch.float64 if model.dtype == np.float64 else torch.float32).eval()


# -- PyTorch -> scratchnn --------------------------------------------------------------------------
SUPPORTED_MODULES = ("Linear", "Conv2d", "ZeroPad2d", "ConstantPad2d", "MaxPool2d", "AvgPool2d",
                     "AdaptiveAvgPool2d(1)", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Dropout", "Flatten", "Unflatten",
                     "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "Identity",
                     "scratchnn.interop.pytorch.Maxout", "scratchnn.interop.pytorch.Standardize")


def _flatten(module, prefix=""):
    """``[(name, leaf module)]`` of a Sequential, nested Sequentials expanded in order."""
    if isinstance(module, (list, tuple)):
        return [(f"{prefix}{i}", m) for i, m in enumerate(module)] if all(
            not isinstance(m, nn.Sequential) for m in module) else [
            x for i, m in enumerate(module) for x in _flatten(m, f"{prefix}{i}_")]
    if isinstance(module, nn.Sequential):
        return [x for name, m in module.named_children() for x in _flatten(m, f"{prefix}{name}_")]
    if isinstance(module, nn.Module):
        return [(prefix.rstrip("_"), module)]
    raise InvalidTypeError(f"from_torch: expected a torch.nn.Sequential or a list of modules, "
                           f"received {type(module).__name__}")


def _np(t):
    return t.detach().cpu().numpy().copy()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _refuse(name, module, why):
    return InvalidArgumentError(f"import from PyTorch: module {name!r} ({module}) {why}")


def _padding(name, module, pad):
    """The module's own padding plus a pending ``(pads, value)`` from a Pad module before it."""
    own = module.padding
    if isinstance(own, str):
        if pad is not None:
            raise _refuse(name, module, "follows a padding module and pads itself by name")
        return own if own == "same" else 0
    ph, pw = _pair(own)
    if pad is None:
        return (ph, pw) if ph or pw else 0
    (t, b), (l, r) = pad[0]
    return ((t + ph, b + ph), (l + pw, r + pw))


def from_torch(module, input_shape):
    if not (isinstance(input_shape, (tuple, list)) and input_shape
            and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in input_shape)):
        raise InvalidArgumentError(f"from_torch: input_shape must be the per-sample shape, e.g. (1, 28, 28), "
                                   f"received {input_shape!r}")
    children = _flatten(module)
    tensors = [t for _, m in children for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    odd = sorted({str(t.dtype) for t in tensors} - {"torch.float32", "torch.float64"})
    if odd:
        raise InvalidArgumentError(f"import from PyTorch: parameters of dtype {', '.join(odd)}; convert the module "
                                   "with module.float() (or .double()) first")
    dtype = model_dtype([np.empty(0, np.float64 if t.dtype == torch.float64 else np.float32) for t in tensors])
    specs, taken, pad, softmaxes = [], set(), None, {}

    def shape_now():
        return _shape_at(specs, input_shape)

    i = 0
    while i < len(children):
        name, m = children[i]
        first_new = len(specs)
        nxt = children[i + 1][1] if i + 1 < len(children) else None
        lname = clean_name(name, taken) if not name.replace("_", "").isdigit() else None
        if pad is not None and not isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            raise _refuse(pad[2], pad[3], "must be followed by Conv2d, MaxPool2d or AvgPool2d")
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)):
            l, r, t, b = m.padding
            if min(l, r, t, b) < 0:
                raise _refuse(name, m, "crops (negative padding)")
            pad = (((t, b), (l, r)), float(m.value), name, m)
            i += 1
            continue
        if isinstance(m, nn.Linear):
            p = {"W": _np(m.weight).T, **({"b": _np(m.bias)} if m.bias is not None else {})}
            if isinstance(nxt, Maxout):
                if m.out_features != nxt.units * nxt.pieces:
                    raise _refuse(children[i + 1][0], nxt, f"needs {nxt.units * nxt.pieces} inputs, the Linear "
                                  f"before it gives {m.out_features}")
                specs.append((L.Maxout(nxt.units, nxt.pieces, use_bias=m.bias is not None, name=lname), p, {}))
                _keep_frozen(m, specs[first_new:])
                i += 2
                continue
            specs.append((L.Dense(m.out_features, use_bias=m.bias is not None, name=lname), p, {}))
        elif isinstance(m, nn.Conv2d) and type(m) is nn.Conv2d:
            if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
                raise _refuse(name, m, "uses groups, dilation or non-zero padding, which scratchnn's Conv2D lacks")
            if pad is not None and pad[1] != 0:
                raise _refuse(pad[2], pad[3], "pads a convolution with a value other than 0")
            specs.append((L.Conv2D(m.out_channels, _pair(m.kernel_size), stride=_pair(m.stride),
                                   padding=_padding(name, m, pad), use_bias=m.bias is not None, name=lname),
                          {"W": _np(m.weight), **({"b": _np(m.bias)} if m.bias is not None else {})}, {}))
        elif isinstance(m, nn.MaxPool2d):
            if _pair(m.dilation) != (1, 1) or m.ceil_mode or m.return_indices:
                raise _refuse(name, m, "uses dilation, ceil_mode or return_indices")
            if pad is not None and pad[1] != -np.inf:
                raise _refuse(pad[2], pad[3], "pads a max pool with a value other than -inf")
            specs.append((L.MaxPool2D(_pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                                      padding=_padding(name, m, pad), name=lname), {}, {}))
        elif isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override is not None or (not m.count_include_pad and _pair(m.padding) != (0, 0)):
                raise _refuse(name, m, "uses ceil_mode, divisor_override or count_include_pad=False with padding")
            if pad is not None and pad[1] != 0:
                raise _refuse(pad[2], pad[3], "pads an average pool with a value other than 0")
            specs.append((L.AvgPool2D(_pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                                      padding=_padding(name, m, pad), name=lname), {}, {}))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                raise _refuse(name, m, "pools to a size other than 1x1 (only global average pooling converts)")
            channels = shape_now()[0]
            specs.append((L.GlobalAvgPool2D(name=lname), {}, {}))
            if isinstance(nxt, nn.Flatten) and nxt.start_dim == 1 and nxt.end_dim == -1:
                i += 1  # scratchnn's global pooling already returns (N, C)
            else:  # PyTorch keeps (N, C, 1, 1)
                specs.append((L.Reshape((channels, 1, 1)), {}, {}))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            if m.momentum is None or not m.track_running_stats:
                raise _refuse(name, m, "has no running statistics with an exponential momentum")
            if not 0 < m.momentum <= 1:
                raise _refuse(name, m, f"has momentum {m.momentum}; scratchnn's BatchNorm needs a PyTorch momentum "
                              "in (0, 1] (its own momentum is 1 minus that)")
            c = m.num_features
            cls = L.BatchNorm2D if isinstance(m, nn.BatchNorm2d) else L.BatchNorm
            specs.append((cls(momentum=_bn_momentum(m.momentum), eps=m.eps, name=lname),
                          {"gamma": _np(m.weight) if m.affine else np.ones(c),
                           "beta": _np(m.bias) if m.affine else np.zeros(c)},
                          {"running_mean": _np(m.running_mean), "running_var": _np(m.running_var)}))
        elif type(m) is nn.Dropout:
            specs.append((L.Dropout(m.p, name=lname), {}, {}))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise _refuse(name, m, "flattens other axes than all but the batch axis")
            specs.append((L.Flatten(name=lname), {}, {}))
        elif isinstance(m, nn.Unflatten):
            shape = shape_now()
            if m.dim not in (1, -1) or (m.dim == -1 and len(shape) != 1):
                raise _refuse(name, m, f"unflattens axis {m.dim} of per-sample shape {shape}; only axis 1 converts")
            sizes = list(m.unflattened_size)
            if -1 in sizes:
                known = int(np.prod([d for d in sizes if d != -1]))
                sizes[sizes.index(-1)] = shape[0] // known if known and shape[0] % known == 0 else -2
            if int(np.prod(sizes)) != shape[0]:
                raise _refuse(name, m, f"cannot split axis 1 of size {shape[0]} into {tuple(m.unflattened_size)}")
            specs.append((L.Reshape((*sizes, *shape[1:]), name=lname), {}, {}))
        elif isinstance(m, nn.Softmax):
            softmaxes[len(specs)] = (name, m)
            specs.append((L.Softmax(name=lname), {}, {}))
        elif type(m) in (nn.ReLU, nn.Sigmoid, nn.Tanh):
            specs.append(({nn.ReLU: L.ReLU, nn.Sigmoid: L.Sigmoid, nn.Tanh: L.Tanh}[type(m)](name=lname), {}, {}))
        elif type(m) is nn.LeakyReLU:
            specs.append((L.LeakyReLU(m.negative_slope, name=lname), {}, {}))
        elif type(m) is nn.ELU:
            specs.append((L.ELU(m.alpha, name=lname), {}, {}))
        elif isinstance(m, Standardize):
            mean, std = _np(m.mean), _np(m.std)
            specs.append((L.Standardize(axis="global" if mean.ndim == 0 else None, name=lname), {},
                          {"mean": mean, "std": std}))
        elif isinstance(m, Maxout):
            raise _refuse(name, m, "must follow the Linear layer it takes the maximum of")
        elif type(m) is nn.Identity:
            pass
        else:
            raise unsupported("PyTorch", f"module {name!r} ({type(m).__name__})", SUPPORTED_MODULES)
        _keep_frozen(m, specs[first_new:])
        pad = None
        i += 1
    if pad is not None:
        raise _refuse(pad[2], pad[3], "must be followed by Conv2d, MaxPool2d or AvgPool2d")
    _check_softmax_axes(specs, softmaxes, input_shape)
    return assemble(specs, input_shape, dtype, "import from PyTorch")


def _keep_frozen(module, specs):
    """A module whose parameters are all frozen (requires_grad False) becomes a layer with trainable=False."""
    flags = [p.requires_grad for p in module.parameters()]
    if flags and not any(flags):
        for layer, _, _ in specs:
            layer.trainable = False


def _shape_at(specs, input_shape):
    shape = tuple(int(d) for d in input_shape)
    for layer, _, _ in specs:
        shape = tuple(layer.output_shape(shape))
    return shape


def _check_softmax_axes(specs, softmaxes, input_shape):
    """scratchnn's Softmax runs over the last axis: a PyTorch Softmax over another axis is refused."""
    shape = tuple(input_shape)
    for index, (layer, _, _) in enumerate(specs):
        if index in softmaxes:
            name, m = softmaxes[index]
            rank = len(shape) + 1
            if m.dim is None or m.dim % rank != rank - 1:
                raise _refuse(name, m, f"takes the softmax over axis {m.dim} of a rank-{rank} input; scratchnn's "
                              "Softmax uses the last axis")
        shape = tuple(layer.output_shape(shape))
