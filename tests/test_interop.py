"""scratchnn.interop: export to ONNX and PyTorch, import from them, and the round trips between."""
import os
import subprocess
from collections import OrderedDict
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import interop
from scratchnn.cli import main
from scratchnn.errors import InvalidArgumentError, MissingDependencyError
from scratchnn.layers import (ELU, AvgPool2D, BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                              Layer, LeakyReLU, MaxPool2D, Maxout, RandomFlip, RandomShift, ReLU, Reshape, Sigmoid,
                              Softmax, Standardize, Tanh)

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nn = torch.nn

REAL_MNIST = Path(os.environ.get("SCRATCHNN_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data") / "mnist"


def gap(want, got):
    """max |difference| relative to the largest |value|: the 1e-5 (float32) criterion."""
    return float(np.max(np.abs(want - got)) / max(float(np.max(np.abs(want))), 1e-30))


def trained(layers, input_shape, n_classes, steps=3, seed=0):
    """A model whose weights and batch-norm statistics have moved away from their initial values."""
    snn.set_seed(seed)
    model = snn.Sequential(layers)
    model.build(input_shape)
    for layer in model.layers:
        if isinstance(layer, Standardize):
            layer.adapt(np.random.default_rng(1).normal(0.5, 2.0, (64, *input_shape)))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, *input_shape)).astype(np.float32)
    y = rng.integers(0, n_classes, 64)
    model.compile("adam", loss="softmax_cross_entropy")
    model.fit(X, y, epochs=steps, batch_size=16, verbose=0)
    return model


def run_onnx(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def arrays(model):
    """Every parameter and buffer, in layer order (layers without arrays skipped)."""
    return [(k, v) for l in model.layers for d in (l.params, l.buffers) for k, v in d.items()]


def assert_bitwise(a, b):
    pa, pb = arrays(a), arrays(b)
    assert [k for k, _ in pa] == [k for k, _ in pb]
    for (k, va), (_, vb) in zip(pa, pb):
        assert va.dtype == vb.dtype and va.shape == vb.shape and np.array_equal(va, vb), k


IMAGE = (3, 9, 8)
CASES = {  # every supported layer, in a network it can be checked in (per-sample input IMAGE or (12,))
    "dense": ((12,), lambda: [Dense(7), Dense(5, use_bias=False)]),
    "maxout": ((12,), lambda: [Maxout(6, pieces=3), Maxout(4, pieces=2, use_bias=False), Dense(5)]),
    "relu-leaky-elu": ((12,), lambda: [Dense(8), ReLU(), Dense(8), LeakyReLU(0.2), Dense(8), ELU(0.7), Dense(5)]),
    "sigmoid-tanh-softmax": ((12,), lambda: [Dense(8), Sigmoid(), Dense(8), Tanh(), Dense(5), Softmax()]),
    "batchnorm-dropout": ((12,), lambda: [Dense(8), BatchNorm(momentum=0.8, eps=1e-3), Dropout(0.4), Dense(5)]),
    "standardize": ((12,), lambda: [Standardize(), Dense(5)]),
    "standardize-global": (IMAGE, lambda: [Standardize(axis="global"), Flatten(), Dense(5)]),
    "reshape": ((12,), lambda: [Reshape((3, -1)), Reshape((2, 6)), Flatten(), Dense(5)]),
    "conv-valid": (IMAGE, lambda: [Conv2D(4, 3), Flatten(), Dense(5)]),
    "conv-int-pair": (IMAGE, lambda: [Conv2D(4, 3, padding=1), Conv2D(4, (3, 5), padding=(0, 2), use_bias=False),
                                      Flatten(), Dense(5)]),
    "conv-asymmetric": (IMAGE, lambda: [Conv2D(4, (2, 3), stride=(2, 1), padding=((0, 1), (2, 0))), Flatten(), Dense(5)]),
    "conv-same-even": (IMAGE, lambda: [Conv2D(4, 4, padding="same"), Conv2D(4, (2, 3), stride=2, padding="same"),
                                       Flatten(), Dense(5)]),
    "maxpool": (IMAGE, lambda: [MaxPool2D(2), MaxPool2D(3, stride=1, padding=1), MaxPool2D(2, padding="same"),
                                Flatten(), Dense(5)]),
    "avgpool": (IMAGE, lambda: [AvgPool2D(2), AvgPool2D(3, stride=1, padding=1), AvgPool2D((2, 3), padding="same"),
                                Flatten(), Dense(5)]),
    "batchnorm2d-gap": (IMAGE, lambda: [Conv2D(6, 3, padding="same"), BatchNorm2D(), ReLU(), GlobalAvgPool2D(),
                                        Dense(5)]),
    "augment": (IMAGE, lambda: [RandomShift(1), RandomFlip(), Conv2D(4, 3), ReLU(), Flatten(), Dense(5)]),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    shape, make = CASES[request.param]
    return trained(make(), shape, 5), shape


def test_every_layer_runs_the_same_in_onnx_runtime_and_pytorch(case, tmp_path):
    model, shape = case
    path = tmp_path / "m.onnx"
    interop.to_onnx(model, path)
    module = interop.to_torch(model)
    for batch in (1, 1000):
        x = np.random.default_rng(batch).normal(size=(batch, *shape)).astype(np.float32)
        want = model.predict_logits(x)
        assert gap(want, run_onnx(path, x)) < 1e-5
        assert gap(want, run_torch(module, x)) < 1e-5


def test_round_trips_keep_every_weight_bit_for_bit(case, tmp_path):
    model, shape = case
    path = tmp_path / "m.onnx"
    interop.to_onnx(model, path)
    for back in (interop.from_onnx(path), interop.from_torch(interop.to_torch(model), shape)):
        assert_bitwise(model, back)
        x = np.random.default_rng(0).normal(size=(50, *shape)).astype(np.float32)
        assert np.array_equal(back.predict_logits(x), model.predict_logits(x))


def test_onnx_graph_is_checked_named_dynamic_and_carries_the_class_names(tmp_path):
    model = trained([Conv2D(4, 3), ReLU(), Flatten(), Dense(3), Softmax()], (1, 6, 6), 3)
    model.info = {"dataset": "toy", "class_names": ["a", "b", "c"], "preprocess": "scale_255"}
    proto = interop.to_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    assert proto.opset_import[0].version == 21
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "probabilities"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [1, 6, 6]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["class_names"] == '["a", "b", "c"]' and meta["dataset"] == "toy"
    assert "divided by 255" in proto.graph.doc_string
    assert interop.from_onnx(tmp_path / "m.onnx").info == model.info
    for opset in (13, 17, 18):  # older opsets, for older runtimes
        interop.to_onnx(model, tmp_path / f"m{opset}.onnx", opset=opset)
        x = np.random.default_rng(0).random((4, 1, 6, 6), np.float32)
        assert gap(model.predict_logits(x), run_onnx(tmp_path / f"m{opset}.onnx", x)) < 1e-5


def test_batch_norm_momentum_and_statistics_follow_each_library_convention():
    model = trained([Dense(4), BatchNorm(momentum=0.9, eps=1e-3)], (3,), 4)
    bn = interop.to_torch(model)[1]
    assert bn.momentum == pytest.approx(0.1) and bn.eps == 1e-3  # PyTorch weighs the new batch
    x = torch.randn(32, 4)
    before = bn.running_mean.clone()
    bn.train()(x)  # one PyTorch update equals one scratchnn update from the same statistics
    ours = interop.from_torch([nn.BatchNorm1d(4, momentum=0.1)], (4,)).layers[0]
    ours.buffers["running_mean"][...] = before.numpy()
    ours.forward(x.numpy(), training=True)
    assert np.allclose(ours.buffers["running_mean"], bn.running_mean.numpy(), atol=1e-6)
    assert interop.from_torch(interop.to_torch(model), (3,)).layers[1].momentum == 0.9


def _mnist(n):
    if REAL_MNIST.is_dir():
        from scratchnn.datasets import load_mnist
        (X, y), (Xt, _) = load_mnist(REAL_MNIST, download=False, progress=False)
        return X[:n].reshape(-1, 1, 28, 28).astype(np.float32) / 255, y[:n], Xt[:1000].reshape(-1, 1, 28, 28) / 255
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 28, 28), np.float32), rng.integers(0, 10, n), rng.random((1000, 1, 28, 28))


@pytest.mark.parametrize("preset", ["mlp", "cnn"])
def test_trained_mnist_presets_match_in_onnx_runtime_and_pytorch(preset, tmp_path):
    from scratchnn.presets import resolve

    X, y, Xt = _mnist(2000)
    layers, settings = resolve(preset, (1, 28, 28), 10)
    model = snn.Sequential(layers)
    model.compile("adam", loss="softmax_cross_entropy")
    model.fit(X, y, epochs=1, batch_size=64, verbose=0)
    interop.to_onnx(model, tmp_path / "m.onnx")
    module = interop.to_torch(model)
    for x in (Xt[:1].astype(np.float32), Xt.astype(np.float32)):
        want = model.predict_logits(x)
        assert gap(want, run_onnx(tmp_path / "m.onnx", x)) < 1e-5
        assert gap(want, run_torch(module, x)) < 1e-5
    same = model.predict_classes(Xt.astype(np.float32))
    assert np.array_equal(run_onnx(tmp_path / "m.onnx", Xt.astype(np.float32)).argmax(1), same)


def torch_net():
    """A PyTorch Sequential of supported modules, in the forms people write them."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding="same"), nn.BatchNorm2d(8), nn.ReLU(),
        nn.ConstantPad2d((0, 1, 0, 1), float("-inf")), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 8, (3, 2), stride=1, padding=1), nn.LeakyReLU(0.05)),
        nn.AvgPool2d(2, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 16), nn.BatchNorm1d(16, momentum=0.2, eps=1e-4), nn.ELU(), nn.Dropout(0.3), nn.Identity(),
        nn.Unflatten(1, (4, 4)), nn.Tanh(), nn.Flatten(), nn.Linear(16, 6), nn.Sigmoid(), nn.Linear(6, 4),
        nn.Softmax(dim=1))


def _torch_trained(module, x, steps=5):
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    module.train()
    for _ in range(steps):
        opt.zero_grad()
        module(x).square().sum().backward()
        opt.step()
    return module.eval()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_from_torch_and_from_torch_onnx_export_compute_what_pytorch_does(tmp_path):
    x = torch.randn(64, 1, 13, 13)
    module = _torch_trained(torch_net(), x)
    model = interop.from_torch(module, (1, 13, 13))
    xs = np.random.default_rng(3).normal(size=(1000, 1, 13, 13)).astype(np.float32)
    want = run_torch(module, xs)
    assert gap(want, model.predict_logits(xs)) < 1e-5
    torch.onnx.export(module, (x[:2],), str(tmp_path / "t.onnx"), input_names=["input"], output_names=["out"],
                      dynamic_axes={"input": {0: "batch"}, "out": {0: "batch"}}, dynamo=False)
    again = interop.from_onnx(tmp_path / "t.onnx")
    assert gap(want, again.predict_logits(xs)) < 1e-5


def test_an_imported_pytorch_network_trains_in_scratchnn():
    module = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    model = interop.from_torch(module, (4, 4))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4, 4)).astype(np.float32)
    y = (X[:, 0, 0] > 0).astype(int) + (X[:, 1, 1] > 0)
    model.compile(snn.optimizers.Adam(0.01), loss="softmax_cross_entropy")
    before = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=30, batch_size=32, verbose=0)
    after = model.evaluate(X, y)
    assert after["loss"] < 0.3 * before and after["accuracy"] > 0.9


def test_torch_round_trip_keeps_layer_names_and_float64():
    snn.set_default_dtype("float64")
    try:
        model = snn.Sequential([Dense(3, name="hidden"), ReLU(name="act"), Dense(2, name="out")])
        model.build((4,))
    finally:
        snn.set_default_dtype("float32")
    module = interop.to_torch(model)
    assert list(dict(module.named_children())) == ["hidden", "act", "out"]
    assert module.hidden.weight.dtype == torch.float64
    back = interop.from_torch(module, (4,))
    assert [l.name for l in back.layers] == ["hidden", "act", "out"]
    assert_bitwise(model, back)


class Square(Layer):
    def forward(self, x, training=False):
        return x * x


@pytest.mark.parametrize("to", ["onnx", "torch"])
def test_export_refuses_a_layer_without_counterpart_by_name(to, tmp_path):
    model = snn.Sequential([Dense(3), Square(name="sq")])
    model.build((2,))
    with pytest.raises(InvalidArgumentError, match=r"Square 'sq' has no .* counterpart; supported layers: Dense"):
        interop.to_onnx(model, tmp_path / "m.onnx") if to == "onnx" else interop.to_torch(model)


@pytest.mark.parametrize("modules, message", [
    ([nn.Linear(4, 4), nn.GRU(4, 4)], r"module '1' \(GRU\) has no scratchnn counterpart; supported: Linear"),
    ([nn.Conv2d(1, 2, 3, groups=1, dilation=2)], r"uses groups, dilation"),
    ([nn.ZeroPad2d(1), nn.ReLU()], r"must be followed by Conv2d"),
    ([nn.ZeroPad2d(1), nn.MaxPool2d(2)], r"pads a max pool with a value other than -inf"),
    ([nn.MaxPool2d(2, ceil_mode=True)], r"ceil_mode"),
    ([nn.Flatten(), nn.Softmax(dim=0)], r"softmax over axis 0"),
    ([nn.AdaptiveAvgPool2d(2)], r"size other than 1x1"),
])
def test_from_torch_names_what_it_cannot_convert(modules, message):
    with pytest.raises(InvalidArgumentError, match=message):
        interop.from_torch(nn.Sequential(*modules), (1, 6, 6))


def test_from_onnx_names_an_unsupported_operator(tmp_path):
    from onnx import TensorProto, helper
    node = helper.make_node("Cos", ["input"], ["y"], name="c")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    with pytest.raises(InvalidArgumentError, match=r"operator Cos \(node 'c'\) has no scratchnn counterpart"):
        interop.from_onnx(proto)
    (tmp_path / "junk.onnx").write_bytes(b"not a graph at all")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        interop.from_onnx(tmp_path / "junk.onnx")


def test_missing_extra_names_the_pip_command(tmp_path):
    """In a process where onnx and torch cannot be imported: one line naming the pip command."""
    code = """
import sys
sys.modules["onnx"] = sys.modules["torch"] = None  # as if not installed
import scratchnn
from scratchnn import interop
from scratchnn.layers import Dense
model = scratchnn.Sequential([Dense(2)]); model.build((3,))
for call in (lambda: interop.to_onnx(model, "x.onnx"), lambda: interop.to_torch(model)):
    try:
        call()
    except scratchnn.errors.MissingDependencyError as e:
        print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.splitlines() == ['ONNX interop needs onnx: pip install "scratchnn[onnx]"',
                                       'PyTorch interop needs torch: pip install "scratchnn[torch]"']
    model = tmp_path / "m.npz"
    subprocess.run([sys.executable, "-c", "import scratchnn; from scratchnn.layers import Dense; "
                    "m = scratchnn.Sequential([Dense(2)]); m.build((3,)); m.save('m.npz')"], check=True, cwd=tmp_path)
    cli = subprocess.run([sys.executable, "-c", "import sys; sys.modules['onnx'] = None; "
                          "from scratchnn.cli import main; sys.exit(main(['export', 'm.npz']))"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 2 and cli.stderr.strip() == (
        'scratchnn export: error: scratchnn export --format onnx needs onnx: pip install "scratchnn[onnx]"')


def test_import_scratchnn_stays_light():
    code = "import sys, scratchnn, scratchnn.interop; print(sorted({'torch', 'onnx', 'onnxruntime'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_export_onnx_and_torch(tmp_path, capsys):
    model = trained([Flatten(), Dense(8), ReLU(), Dense(3)], (1, 4, 4), 3)
    model.info = {"preprocess": "scale_255"}
    model.save(tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "ONNX Runtime gives scratchnn's outputs" in out and "divide raw 0-255 pixels by 255" in out
    assert main(["export", str(tmp_path / "m.npz"), "--format", "torch"]) == 0
    state = torch.load(tmp_path / "m.pt")
    module = interop.to_torch(snn.load(tmp_path / "m.npz"))
    module.load_state_dict(state)
    assert main(["export", str(tmp_path / "m.npz"), "--format", "torch"]) == 2  # refuses to overwrite
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "none" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_transfer_from_pytorch_example_runs():
    """examples/transfer_from_pytorch.py: a PyTorch CNN, imported, truncated, new head, fine-tuned."""
    script = Path(__file__).resolve().parents[1] / "examples" / "transfer_from_pytorch.py"
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fine-tuned in scratchnn" in out.stdout


def test_from_torch_unflatten_splits_axis_1_only():
    net = nn.Sequential(nn.Unflatten(1, (-1, 4)), nn.Softmax(-1))
    model = interop.from_torch(net, (8, 3))
    x = np.random.default_rng(0).normal(size=(7, 8, 3)).astype(np.float32)
    assert gap(run_torch(net.eval(), x), model.predict_logits(x)) < 1e-6
    with pytest.raises(InvalidArgumentError, match="cannot split axis 1 of size 8"):
        interop.from_torch(nn.Sequential(nn.Unflatten(1, (3, 3))), (8, 3))


def test_to_torch_names_never_collide_or_shadow_module_attributes():
    model = trained([Conv2D(2, 3, name="c"), MaxPool2D(2, 1, padding="same", name="p"), Tanh(name="p_pad"),
                     ReLU(name="forward"), GlobalAvgPool2D(), Dense(3)], (1, 6, 6), 3)
    module = interop.to_torch(model)
    x = np.random.default_rng(0).normal(size=(5, 1, 6, 6)).astype(np.float32)
    assert gap(model.predict_logits(x), run_torch(module, x)) < 1e-5
    assert len(module) == 8  # pad + pool for "p"; nothing dropped


def test_maxout_exports_at_every_supported_opset(tmp_path):
    model = trained([Maxout(4, pieces=3), Dense(3)], (5,), 3)
    x = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)
    for opset in (13, 17, 18, 21, onnx.defs.onnx_opset_version()):
        interop.to_onnx(model, tmp_path / f"m{opset}.onnx", opset=opset)
        if opset <= 23:  # what this ONNX Runtime is sure to run
            assert gap(model.predict_logits(x), run_onnx(tmp_path / f"m{opset}.onnx", x)) < 1e-5
        assert_bitwise(model, interop.from_onnx(tmp_path / f"m{opset}.onnx"))


def test_float64_models_export_float32_by_default(tmp_path):
    snn.set_default_dtype("float64")
    try:
        model = trained([Conv2D(2, 3), ReLU(), Flatten(), Dense(3)], (1, 5, 5), 3)
    finally:
        snn.set_default_dtype("float32")
    interop.to_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(4, 1, 5, 5)).astype(np.float32)
    assert gap(model.predict_logits(x.astype(np.float64)), run_onnx(tmp_path / "m.onnx", x)) < 1e-5
    exact = interop.to_onnx(model, dtype="float64")
    assert_bitwise(model, interop.from_onnx(exact))


def test_frozen_layers_stay_frozen_and_imports_keep_given_names():
    model = trained([Dense(4, name="base"), ReLU(), Dense(3, name="head")], (5,), 3)
    model.layers[0].trainable = False
    module = interop.to_torch(model)
    assert not module.base.weight.requires_grad and module.head.weight.requires_grad
    back = interop.from_torch(module, (5,))
    assert [l.trainable for l in back.layers] == [False, True, True]
    mixed = nn.Sequential(OrderedDict([("0", nn.Linear(5, 4)), ("dense_1", nn.Linear(4, 3))]))
    assert [l.name for l in interop.from_torch(mixed, (5,)).layers] == ["dense_2", "dense_1"]


def test_pytorch_global_pool_without_flatten_keeps_its_shape():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1))
    model = interop.from_torch(net, (1, 6, 6))
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)
    assert model.predict_logits(x).shape == (2, 3, 1, 1)
    assert gap(run_torch(net.eval(), x), model.predict_logits(x)) < 1e-6


def test_torch_modules_that_cannot_convert_are_named():
    with pytest.raises(InvalidArgumentError, match="dtype torch.bfloat16"):
        interop.from_torch(nn.Sequential(nn.Linear(3, 2)).to(torch.bfloat16), (3,))
    with pytest.raises(InvalidArgumentError, match="momentum 0.0"):
        interop.from_torch(nn.Sequential(nn.BatchNorm1d(3, momentum=0.0)), (3,))


def test_standardize_statistics_are_copied_not_shared():
    model = trained([Standardize(), Dense(2)], (4,), 2)
    module = interop.to_torch(model)
    model.layers[0].buffers["mean"][...] += 1
    assert not np.allclose(module[0].mean.numpy(), model.layers[0].buffers["mean"])


def test_cli_export_refuses_to_overwrite_the_model_itself(tmp_path, capsys):
    model = trained([Dense(3)], (2,), 3)
    model.save(tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.npz"), "--overwrite"]) == 2
    assert "is the model file itself" in capsys.readouterr().err
    assert snn.load(tmp_path / "m.npz")
