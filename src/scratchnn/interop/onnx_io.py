"""scratchnn <-> ONNX (see ``scratchnn.interop``). Importing this module imports ``onnx``."""
from __future__ import annotations

import json
import os

import numpy as np

from .. import layers as L
from ..errors import InvalidArgumentError, InvalidTypeError, MissingFileError, ModelFileError
from ._common import assemble, check_exportable, clean_name, model_dtype, unsupported, window_pads, require

onnx = require("onnx", "onnx", "ONNX interop")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


# -- scratchnn -> ONNX -----------------------------------------------------------------------------
class _Builder:
    """Appends one operator after another to a chain starting at the graph input ``"input"``."""

    def __init__(self, dtype, opset):
        self.dtype, self.opset = np.dtype(dtype), opset
        self.nodes, self.initializers, self.current = [], [], "input"

    def const(self, name, value, dtype=None):
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype or self.dtype), name))
        return name

    def op(self, op_type, name, *extra_inputs, **attrs):
        out = f"{name}:out"
        self.nodes.append(helper.make_node(op_type, [self.current, *extra_inputs], [out], name=name, **attrs))
        self.current = out


def _pads_attr(pads):
    """ONNX order: ``[top, left, bottom, right]``."""
    (t, b), (l, r) = pads
    return [t, l, b, r]


def _emit(g: _Builder, layer, shape):
    name, kind = layer.name, type(layer)
    p = layer.params
    if kind in (L.Dense, L.Maxout):
        bias = [g.const(f"{name}.b", p["b"])] if layer.use_bias else []
        g.op("Gemm", name, g.const(f"{name}.W", p["W"]), *bias)
        if kind is L.Maxout:
            g.op("Reshape", f"{name}/pieces", g.const(f"{name}/pieces.shape", [0, layer.maxout_units, layer.pieces],
                                                       np.int64))
            if g.opset >= 18:  # axes became an input in opset 18
                g.op("ReduceMax", f"{name}/max", g.const(f"{name}/max.axes", [2], np.int64), keepdims=0)
            else:
                g.op("ReduceMax", f"{name}/max", axes=[2], keepdims=0)
    elif kind is L.Conv2D:
        bias = [g.const(f"{name}.b", p["b"])] if layer.use_bias else []
        g.op("Conv", name, g.const(f"{name}.W", p["W"]), *bias, kernel_shape=list(layer.kernel_size),
             strides=list(layer.stride), pads=_pads_attr(window_pads(layer, shape)))
    elif kind is L.MaxPool2D:
        g.op("MaxPool", name, kernel_shape=list(layer.pool_size), strides=list(layer.stride),
             pads=_pads_attr(window_pads(layer, shape)))
    elif kind is L.AvgPool2D:
        g.op("AveragePool", name, kernel_shape=list(layer.pool_size), strides=list(layer.stride),
             pads=_pads_attr(window_pads(layer, shape)), count_include_pad=1)
    elif kind is L.GlobalAvgPool2D:
        g.op("GlobalAveragePool", name)
        g.op("Flatten", f"{name}/flatten", axis=1)
    elif kind in (L.BatchNorm, L.BatchNorm2D):  # ONNX's momentum follows scratchnn's convention
        g.op("BatchNormalization", name, g.const(f"{name}.gamma", p["gamma"]), g.const(f"{name}.beta", p["beta"]),
             g.const(f"{name}.running_mean", layer.buffers["running_mean"]),
             g.const(f"{name}.running_var", layer.buffers["running_var"]), epsilon=layer.eps, momentum=layer.momentum)
    elif kind is L.Dropout:  # inference mode: the identity; the rate is kept for the way back
        g.op("Dropout", name, g.const(f"{name}.ratio", layer.rate))
    elif kind is L.Flatten:
        g.op("Flatten", name, axis=1)
    elif kind is L.Reshape:
        g.op("Reshape", name, g.const(f"{name}.shape", [0, *layer.output_shape(shape)], np.int64))
    elif kind is L.Standardize:
        g.op("Sub", name, g.const(f"{name}.mean", layer.buffers["mean"]))
        g.op("Div", f"{name}/std", g.const(f"{name}.std", layer.buffers["std"]))
    elif kind in (L.RandomShift, L.RandomFlip):
        pass  # training-only augmentation: the identity at inference
    elif kind is L.LeakyReLU:
        g.op("LeakyRelu", name, alpha=layer.alpha)
    elif kind is L.ELU:
        g.op("Elu", name, alpha=layer.alpha)
    elif kind is L.Softmax:
        g.op("Softmax", name, axis=-1)
    else:
        g.op({L.ReLU: "Relu", L.Sigmoid: "Sigmoid", L.Tanh: "Tanh"}[kind], name)


def to_onnx(model, path=None, opset=21, dtype="float32"):
    from .. import __version__

    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= onnx.defs.onnx_opset_version():
        raise InvalidArgumentError(f"to_onnx: opset must be an int from 13 to {onnx.defs.onnx_opset_version()}, "
                                   f"received {opset!r}")
    if dtype not in ("float32", "float64", np.float32, np.float64):
        raise InvalidArgumentError(f"to_onnx: dtype must be 'float32' or 'float64', received {dtype!r}")
    layers = check_exportable(model, "ONNX")
    dtype = np.dtype(dtype)
    g = _Builder(dtype, opset)
    for layer, shape in layers:
        _emit(g, layer, shape)
    last = model.layers[-1] if model.layers else None
    out_name = "probabilities" if type(last) is L.Softmax else "logits"
    if g.nodes:
        g.nodes[-1].output[0] = out_name
    else:
        g.op("Identity", "identity")
        g.nodes[-1].output[0] = out_name
    elem = _ELEM[dtype]
    graph = helper.make_graph(
        g.nodes, model.name,
        [helper.make_tensor_value_info("input", elem, ["batch", *model.input_shape])],
        [helper.make_tensor_value_info(out_name, elem, ["batch", *model.output_shape])],
        initializer=g.initializers)
    info = dict(model.info or {})
    graph.doc_string = _describe(model, info)
    proto = helper.make_model(graph, producer_name="scratchnn", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))  # the oldest IR that runtimes need
    meta = {"input_shape": json.dumps(list(model.input_shape))}
    for key in ("dataset", "preprocess", "class_names"):
        if key in info:
            meta[key] = info[key] if isinstance(info[key], str) else json.dumps(info[key])
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..files import atomic_write
        atomic_write(os.fspath(path), lambda f: f.write(proto.SerializeToString()))
    return proto


def _describe(model, info):
    scale = ("inputs are raw pixels divided by 255 (do this before calling the graph)"
             if info.get("preprocess") == "scale_255" else "inputs as the model was trained on")
    return (f"scratchnn model {model.name!r}: input (batch, {', '.join(map(str, model.input_shape))}), "
            f"{scale}; output: one score per class" + (f" ({info['dataset']})" if "dataset" in info else ""))


def read_metadata(proto) -> dict:
    """``model.info`` as ``to_onnx`` stored it in the graph's metadata properties."""
    info = {}
    for prop in proto.metadata_props:
        if prop.key in ("dataset", "preprocess"):
            info[prop.key] = prop.value
        elif prop.key == "class_names":
            try:
                names = json.loads(prop.value)
            except ValueError:
                continue
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                info["class_names"] = names
    return info


# -- ONNX -> scratchnn -----------------------------------------------------------------------------
SUPPORTED_OPS = ("Gemm", "MatMul (+ Add)", "Conv", "Pad (before Conv/MaxPool/AveragePool)", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "BatchNormalization", "Dropout", "Identity", "Flatten", "Reshape",
                 "Reshape + ReduceMax (maxout)", "Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Softmax",
                 "Sub + Div (standardization)")


def _load(path_or_model):
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, "<ModelProto>"
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise InvalidTypeError(f"from_onnx: expected a path or an onnx.ModelProto, "
                               f"received {type(path_or_model).__name__}")
    path = os.fspath(path_or_model)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path!r} does not exist" if not os.path.exists(path) else f"{path!r} is not a file")
    try:
        return onnx.load(path), path
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelFileError(f"{path!r} is not an ONNX model ({type(e).__name__}: {str(e)[:120]})") from None


def _attrs(node):
    """A node's attributes; floats (stored as float32) as their shortest decimal, so 0.9 stays 0.9."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = float(str(np.float32(v))) if a.type == onnx.AttributeProto.FLOAT else v
    return out


class _Chain:
    """The graph as a chain of data operators, with every other input resolved to a NumPy array.

    Inputs computed without the data (initializers, ``Constant`` nodes, shape arithmetic on
    ``Shape`` of the data, as ``torch.onnx.export`` writes for ``Unflatten`` or ``ZeroPad2d``) are
    evaluated with ONNX's reference evaluator at batch sizes 1 and 2, so that an entry equal to the
    batch size can be told from a fixed one.
    """

    def __init__(self, proto, where, input_shape):
        graph = proto.graph
        inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in inits]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise InvalidArgumentError(f"{where}: expected one input and one output, found "
                                       f"{len(inputs)} inputs and {len(graph.output)} outputs")
        self.input = inputs[0].name
        self.input_shape = self._input_shape(inputs[0], input_shape, where)
        data, nodes = {self.input}, []
        for node in graph.node:
            if node.op_type != "Shape" and any(i in data for i in node.input):
                data.update(o for o in node.output if o)
                nodes.append(node)
        self.nodes, self.consts = nodes, dict(inits)
        wanted = sorted({i for n in nodes for i in n.input if i and i not in data and i not in inits})
        if wanted:
            self.batch = {b: self._evaluate(proto, wanted, b) for b in (1, 2)}
            self.consts.update(self.batch[1])
        else:
            self.batch = {1: {}, 2: {}}
        previous = self.input
        for node in nodes:
            fed = [i for i in node.input if i in data]
            if fed != [previous]:
                raise InvalidArgumentError(f"{where}: the graph is not a chain of layers: node {node.name or node.op_type!r} "
                                           f"({node.op_type}) reads {fed} after {previous!r}")
            previous = node.output[0]
        if previous != graph.output[0].name:
            raise InvalidArgumentError(f"{where}: the graph's output {graph.output[0].name!r} is not the end of its chain")

    @staticmethod
    def _input_shape(value_info, given, where):
        dims = value_info.type.tensor_type.shape.dim
        found = [d.dim_value if d.HasField("dim_value") else None for d in dims][1:]
        if given is not None:
            given = tuple(int(d) for d in given)
            if len(given) != len(found) or any(f is not None and f != g for f, g in zip(found, given)):
                raise InvalidArgumentError(f"{where}: input_shape {given} does not fit the graph's input "
                                           f"(batch, {', '.join('?' if f is None else str(f) for f in found)})")
            return given
        if not dims or any(f is None for f in found):
            raise InvalidArgumentError(f"{where}: the graph's input has unknown sizes besides the batch axis; "
                                       "pass input_shape=(...) (batch axis excluded)")
        return tuple(found)

    def _evaluate(self, proto, names, batch):
        from onnx.reference import ReferenceEvaluator

        elem = proto.graph.input[[i.name for i in proto.graph.input].index(self.input)].type.tensor_type.elem_type
        x = np.zeros((batch, *self.input_shape), dtype=helper.tensor_dtype_to_np_dtype(elem))
        values = ReferenceEvaluator(proto).run(names, {self.input: x})
        return dict(zip(names, values))

    def const(self, name, what):
        if name not in self.consts:
            raise InvalidArgumentError(f"from_onnx: {what} is not a constant")
        return np.asarray(self.consts[name])

    def per_sample_shape(self, name, node):
        """The per-sample target of a ``Reshape``: entry 0 must be the batch (or 0, or -1)."""
        one, two = (np.asarray(self.batch[b].get(name, self.consts.get(name))) for b in (1, 2))
        if one.ndim != 1 or len(one) < 1 or not (one[0] in (0, -1, 1) and two[0] in (0, -1, 2)):
            raise InvalidArgumentError(f"from_onnx: Reshape {node.name!r} changes the batch axis "
                                       f"(target {one.tolist()}); only per-sample reshapes convert")
        if not np.array_equal(one[1:], two[1:]):
            raise InvalidArgumentError(f"from_onnx: Reshape {node.name!r} has a target that depends on the batch size")
        return tuple(int(d) for d in one[1:])


def _spatial_pads(node, chain, where):
    """``((top, bottom), (left, right))`` of a 4-D ``Pad`` that pads only the spatial axes, and its value."""
    a = _attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise InvalidArgumentError(f"{where}: Pad {node.name!r} uses mode {mode!r}; only constant padding converts")
    pads = chain.const(node.input[1], f"the pads of Pad {node.name!r}").astype(int).tolist()
    value = float(chain.const(node.input[2], "the Pad value")) if len(node.input) > 2 and node.input[2] else 0.0
    if len(node.input) > 3 and node.input[3]:
        axes = [int(x) % 4 for x in chain.const(node.input[3], "the Pad axes")]
        full = [0] * 8
        for k, ax in enumerate(axes):
            full[ax], full[ax + 4] = pads[k], pads[k + len(axes)]
        pads = full
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise InvalidArgumentError(f"{where}: Pad {node.name!r} pads {pads}; only adding to height and width converts")
    return ((pads[2], pads[6]), (pads[3], pads[7])), value


def _window(node, pad, where, kind):
    a = _attrs(node)
    if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("ceil_mode", 0) or len(node.output) > 1:
        raise InvalidArgumentError(f"{where}: {kind} {node.name!r} uses dilations, ceil_mode or indices")
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID", "SAME_UPPER"):
        raise InvalidArgumentError(f"{where}: {kind} {node.name!r} uses auto_pad={auto}; scratchnn pads the extra "
                                   "pixel at the end (SAME_UPPER)")
    stride = tuple(a.get("strides", [1, 1]))
    if auto == "SAME_UPPER":
        if pad is not None:
            raise InvalidArgumentError(f"{where}: {kind} {node.name!r} follows a Pad and pads itself")
        return stride, "same"
    t, l, b, r = a.get("pads", [0, 0, 0, 0])
    if pad is not None:
        (pt, pb), (pl, pr) = pad
        t, b, l, r = t + pt, b + pb, l + pl, r + pr
    return stride, ((t, b), (l, r)) if (t, b, l, r) != (0, 0, 0, 0) else 0


def from_onnx(path_or_model, input_shape=None):
    proto, where = _load(path_or_model)
    where = f"from_onnx({where!r})" if where != "<ModelProto>" else "from_onnx"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ModelFileError(f"{where}: the graph fails onnx.checker: {str(e).splitlines()[0][:200]}") from None
    chain = _Chain(proto, where, input_shape)
    nodes, specs, taken = chain.nodes, [], set()
    arrays = [v for v in chain.consts.values() if np.asarray(v).dtype.kind == "f"]
    i, pad = 0, None
    while i < len(nodes):
        node, op = nodes[i], nodes[i].op_type
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        a = _attrs(node)
        name = clean_name(node.name, taken)
        if pad is not None and op not in ("Conv", "MaxPool", "AveragePool"):
            raise InvalidArgumentError(f"{where}: Pad {pad[2]!r} must be followed by Conv, MaxPool or AveragePool")
        if op == "Pad":
            pads, value = _spatial_pads(node, chain, where)
            pad = (pads, value, node.name)
            i += 1
            continue
        if op in ("Gemm", "MatMul"):
            W = chain.const(node.input[1], f"the weights of {op} {node.name!r}")
            b, used = None, 1
            if op == "Gemm":
                if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    raise InvalidArgumentError(f"{where}: Gemm {node.name!r} uses transA, alpha or beta")
                W = W.T if a.get("transB", 0) else W
                b = chain.const(node.input[2], "the Gemm bias") if len(node.input) > 2 and node.input[2] else None
            elif nxt is not None and nxt.op_type == "Add":
                b, used = chain.const([x for x in nxt.input if x != node.output[0]][0], "the bias added"), 2
            if W.ndim != 2 or (b is not None and b.shape != (W.shape[1],)):
                raise InvalidArgumentError(f"{where}: {op} {node.name!r} has weights {W.shape} and bias "
                                           f"{None if b is None else b.shape}; expected (in, out) and (out,)")
            params = {"W": np.ascontiguousarray(W), **({"b": b} if b is not None else {})}
            after = nodes[i + used:i + used + 2]
            if len(after) == 2 and after[0].op_type == "Reshape" and after[1].op_type == "ReduceMax":
                units, pieces = chain.per_sample_shape(after[0].input[1], after[0])
                axes = _attrs(after[1]).get("axes")
                if axes is None and len(after[1].input) > 1:
                    axes = chain.const(after[1].input[1], "the ReduceMax axes").tolist()
                if list(axes or []) not in ([2], [-1]) or _attrs(after[1]).get("keepdims", 1) != 0:
                    raise InvalidArgumentError(f"{where}: ReduceMax {after[1].name!r} after {op} is not a maxout "
                                               "(max over axis 2, keepdims=0)")
                specs.append((L.Maxout(units, pieces, use_bias=b is not None, name=name), params, {}))
                i += used + 2
                continue
            specs.append((L.Dense(W.shape[1], use_bias=b is not None, name=name), params, {}))
            i += used
            continue
        if op == "Conv":
            if a.get("group", 1) != 1:
                raise InvalidArgumentError(f"{where}: Conv {node.name!r} is grouped (group={a['group']})")
            if pad is not None and pad[1] != 0:
                raise InvalidArgumentError(f"{where}: Pad {pad[2]!r} pads a convolution with {pad[1]}, not 0")
            W = chain.const(node.input[1], f"the weights of Conv {node.name!r}")
            b = chain.const(node.input[2], "the Conv bias") if len(node.input) > 2 and node.input[2] else None
            stride, padding = _window(node, None if pad is None else pad[0], where, "Conv")
            specs.append((L.Conv2D(W.shape[0], W.shape[2:], stride=stride, padding=padding, use_bias=b is not None,
                                   name=name), {"W": W, **({"b": b} if b is not None else {})}, {}))
        elif op in ("MaxPool", "AveragePool"):
            fill = -np.inf if op == "MaxPool" else 0.0
            if pad is not None and pad[1] != fill:
                raise InvalidArgumentError(f"{where}: Pad {pad[2]!r} pads a {op} with {pad[1]}, not {fill}")
            stride, padding = _window(node, None if pad is None else pad[0], where, op)
            if op == "AveragePool" and not a.get("count_include_pad", 0) and any(a.get("pads", [0])):
                raise InvalidArgumentError(f"{where}: AveragePool {node.name!r} leaves padding out of the mean "
                                           "(count_include_pad=0); scratchnn counts it")
            cls = L.MaxPool2D if op == "MaxPool" else L.AvgPool2D
            layer = cls(tuple(a["kernel_shape"]), stride, padding=padding, name=name)
            if op == "AveragePool" and padding == "same" and not a.get("count_include_pad", 0):
                pads = window_pads(layer, _shape_at(specs, chain.input_shape))
                if any(p for pair in pads for p in pair):
                    raise InvalidArgumentError(f"{where}: AveragePool {node.name!r} leaves its SAME_UPPER padding out "
                                               "of the mean (count_include_pad=0); scratchnn counts it")
            specs.append((layer, {}, {}))
        elif op == "GlobalAveragePool":
            specs.append((L.GlobalAvgPool2D(name=name), {}, {}))
            if nxt is not None and (nxt.op_type == "Flatten" and _attrs(nxt).get("axis", 1) == 1
                                    or nxt.op_type == "Reshape" and len(chain.per_sample_shape(nxt.input[1], nxt)) == 1):
                i += 1  # scratchnn's global pooling already returns (N, C)
        elif op == "BatchNormalization":
            if a.get("training_mode", 0):
                raise InvalidArgumentError(f"{where}: BatchNormalization {node.name!r} is in training mode")
            gamma, beta, mean, var = (chain.const(x, f"the statistics of {node.name!r}") for x in node.input[1:5])
            rank = len(_shape_at(specs, chain.input_shape))
            cls = L.BatchNorm2D if rank == 3 else L.BatchNorm
            specs.append((cls(momentum=float(a.get("momentum", 0.9)), eps=float(a.get("epsilon", 1e-5)), name=name),
                          {"gamma": gamma, "beta": beta}, {"running_mean": mean, "running_var": var}))
        elif op == "Dropout":
            if len(node.input) > 2 and node.input[2] and bool(chain.const(node.input[2], "training_mode")):
                raise InvalidArgumentError(f"{where}: Dropout {node.name!r} is in training mode")
            rate = float(chain.const(node.input[1], "the dropout ratio")) if len(node.input) > 1 and node.input[1] \
                else float(a.get("ratio", 0.5))
            specs.append((L.Dropout(rate, name=name), {}, {}))
        elif op == "Identity":
            pass
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                raise InvalidArgumentError(f"{where}: Flatten {node.name!r} uses axis {a['axis']}; only axis 1 converts")
            specs.append((L.Flatten(name=name), {}, {}))
        elif op == "Reshape":
            specs.append((L.Reshape(chain.per_sample_shape(node.input[1], node), name=name), {}, {}))
        elif op in ("Relu", "Sigmoid", "Tanh"):
            specs.append(({"Relu": L.ReLU, "Sigmoid": L.Sigmoid, "Tanh": L.Tanh}[op](name=name), {}, {}))
        elif op == "LeakyRelu":
            specs.append((L.LeakyReLU(float(a.get("alpha", 0.01)), name=name), {}, {}))
        elif op == "Elu":
            specs.append((L.ELU(float(a.get("alpha", 1.0)), name=name), {}, {}))
        elif op == "Softmax":
            rank = len(_shape_at(specs, chain.input_shape)) + 1
            opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 21)
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if axis % rank != rank - 1:
                raise InvalidArgumentError(f"{where}: Softmax {node.name!r} runs over axis {axis} of a rank-{rank} "
                                           "input; scratchnn's Softmax uses the last axis")
            specs.append((L.Softmax(name=name), {}, {}))
        elif op == "Sub" and nxt is not None and nxt.op_type == "Div":
            mean = chain.const(node.input[1], f"what Sub {node.name!r} subtracts")
            std = chain.const(nxt.input[1], f"what Div {nxt.name!r} divides by")
            shape = _shape_at(specs, chain.input_shape)
            mean, std = _per_sample(mean, shape), _per_sample(std, shape)
            if mean is None or std is None or mean.shape != std.shape:
                raise InvalidArgumentError(f"{where}: Sub {node.name!r} + Div {nxt.name!r} do not standardize "
                                           f"per input element or globally (per-sample shape {shape})")
            specs.append((L.Standardize(axis="global" if mean.ndim == 0 else None, name=name), {},
                          {"mean": mean, "std": std}))
            i += 1
        else:
            raise unsupported("ONNX", f"operator {op} (node {node.name!r})", SUPPORTED_OPS)
        pad = None
        i += 1
    if pad is not None:
        raise InvalidArgumentError(f"{where}: Pad {pad[2]!r} must be followed by Conv, MaxPool or AveragePool")
    model = assemble(specs, chain.input_shape, model_dtype(arrays), where)
    model.info = read_metadata(proto)
    return model


def _shape_at(specs, input_shape):
    shape = tuple(input_shape)
    for layer, _, _ in specs:
        shape = tuple(layer.output_shape(shape))
    return shape


def _per_sample(a, shape):
    """A scalar stays a scalar; ``(shape)`` or ``(1, *shape)`` becomes ``shape``; anything else None."""
    a = np.asarray(a)
    if a.size == 1:
        return a.reshape(())
    if a.shape == shape:
        return a
    if a.shape == (1, *shape):
        return a.reshape(shape)
    return None
