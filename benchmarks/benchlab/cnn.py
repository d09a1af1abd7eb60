"""The CNN workload: the CNN issue's network, in scratchnn and in PyTorch with the same weights.

Network: Conv(32, 3x3, same)-ReLU-MaxPool2-Conv(64, 3x3, same)-ReLU-MaxPool2-Dense(128)-ReLU-
Dense(10), Adam(1e-3), batch 64, float32, MNIST images. It is the ``cnn`` section of the suite
(``python benchmarks/bench_mlp.py --sections cnn``) and part of its inference section; ``main`` is the
standalone ``benchmarks/bench_cnn.py``: contenders alternating round by round, the best round
reported as seconds per 10,000 training samples, with the ratio, achieved GFLOP/s against the
measured float32 GEMM peak, and the peak traced NumPy memory of a scratchnn training step next
to the largest im2col buffer. There is no NumPy floor for the CNN.
"""
from __future__ import annotations

import dataclasses
import threading
import tracemalloc
from dataclasses import dataclass

import numpy as np

from . import common

BATCH = 64


@dataclass(frozen=True)
class CNNWorkload:
    """Conv(c1, 3x3, same)-ReLU-MaxPool2-Conv(c2, 3x3, same)-ReLU-MaxPool2-Dense(d)-ReLU-Dense(10), Adam."""

    key: str = "cnn"
    title: str = "CNN conv32-pool-conv64-pool-128-10, Adam(1e-3), batch 64"
    batch: int = BATCH
    lr: float = 1e-3
    channels: tuple = (32, 64)
    dense: int = 128

    kind = "cnn"
    input_shape = (1, 28, 28)
    has_numpy_floor = False
    optimizer = "adam"

    def with_(self, **kw) -> "CNNWorkload":
        return dataclasses.replace(self, **kw)

    def toy(self) -> "CNNWorkload":
        return self.with_(channels=(2, 2), dense=8)

    def _macs(self) -> tuple[int, int]:
        """Multiply-adds per sample: (first convolution, whole network)."""
        c1, c2 = self.channels
        conv1 = 28 * 28 * c1 * 9 * 1
        conv2 = 14 * 14 * c2 * 9 * c1
        dense = 7 * 7 * c2 * self.dense + self.dense * 10
        return conv1, conv1 + conv2 + dense

    def train_flops_per_sample(self) -> int:
        """Forward 2 per multiply-add, backward twice that, minus the first convolution's unused
        input gradient."""
        conv1, macs = self._macs()
        return 2 * macs * 3 - 2 * conv1

    def infer_flops_per_sample(self) -> int:
        return 2 * self._macs()[1]

    def memory_budget_bytes(self, n_data_rows: int) -> dict:
        """The issue's budget; activations = input, every layer output and the two im2col buffers."""
        c1, c2 = self.channels
        d = self.dense
        params = 9 * c1 + c1 + 9 * c1 * c2 + c2 + 49 * c2 * d + d + 10 * d + 10
        per_sample = (784 + 2 * 784 * c1 + 196 * c1 + 2 * 196 * c2 + 49 * c2 + 2 * d + 10  # layer outputs
                      + 784 * 9 + 196 * 9 * c1)  # im2col columns
        return common.budget_parts(params, 2 * params, self.batch * per_sample, n_data_rows)

    def build_scratchnn(self, seed: int = 0):
        import scratchnn as snn
        from scratchnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

        snn.set_seed(seed)
        c1, c2 = self.channels
        m = snn.Sequential([Conv2D(c1, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(c2, 3, padding="same"), ReLU(),
                            MaxPool2D(2), Flatten(), Dense(self.dense, init="he_normal"), ReLU(), Dense(10)])
        m.compile(snn.optimizers.Adam(self.lr), "softmax_cross_entropy")
        m.build(self.input_shape)
        return m

    def build_torch(self, torch, snn_model):
        """``(nn.Sequential, Adam)`` with the scratchnn model's initial weights."""
        nn = torch.nn
        c1, c2 = self.channels
        net = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(7 * 7 * c2, self.dense), nn.ReLU(),
                            nn.Linear(self.dense, 10))
        with torch.no_grad():  # the same initial weights: conv layouts agree, Linear is W.T
            params = [l.params for l in snn_model.layers if l.params]
            torch_layers = [l for l in net if isinstance(l, (nn.Conv2d, nn.Linear))]
            for p, t in zip(params, torch_layers):
                w = p["W"] if isinstance(t, nn.Conv2d) else p["W"].T
                t.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                t.bias.copy_(torch.from_numpy(p["b"]))
        return net, torch.optim.Adam(net.parameters(), lr=self.lr)


CNN = CNNWorkload()


def flops_per_sample() -> int:
    """Training FLOPs of one sample of the issue's CNN (about 25 MFLOP)."""
    return CNN.train_flops_per_sample()


def peak_step_memory(model, X, y, batch: int = BATCH) -> dict:
    """Peak traced NumPy memory of one of ``fit``'s training steps (tracemalloc sees NumPy buffers),
    the buffers the engine reuses from step to step included: they are released before the traced
    step, which makes them again. One-time state (the optimizer's moments) is made before."""
    from scratchnn.engine import FastEngine, buffers, threads

    X = common.as_images(X)
    xb, yb = X[:batch], y[:batch]
    with FastEngine(model, len(xb), xb.shape[1:], yb.shape[1:], yb.dtype) as eng:
        eng.begin_epoch()
        eng.step(xb, yb)
        # every thread's buffers (each thread of a split batch keeps its own scratch buffers): the
        # barrier holds each release on its own thread until all have run
        shards = eng.replicas.shards if eng.replicas is not None else 1
        gate = threading.Barrier(shards)
        threads.run([lambda: (buffers.release(), gate.wait())] * shards)
        tracemalloc.start()
        eng.step(xb, yb)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    c1 = model.layers[0].params["W"].shape[0]
    im2col = len(xb) * 14 * 14 * 9 * c1 * 4  # the largest column buffer: second convolution
    return {"peak_step_mb": peak / 2**20, "largest_im2col_mb": im2col / 2**20, "ratio": peak / im2col}


@dataclass(frozen=True)
class CNNBNWorkload(CNNWorkload):
    """The ``cnn-bn`` preset's network without its augmentation layer: three Conv(3x3, same, no
    bias)-BatchNorm-ReLU-MaxPool2 stages (32/64/128), Dense(128, no bias)-BatchNorm-ReLU-Dropout(0.4)-
    Dense(10); Adam(3e-3), batch 64 (the preset's settings)."""

    key: str = "cnn-bn"
    title: str = "CNN-BN (cnn-bn preset) conv32-64-128 with batch norm, Adam(3e-3), batch 64"
    lr: float = 3e-3
    channels: tuple = (32, 64, 128)
    dense: int = 128

    kind = "cnn_bn"

    def toy(self) -> "CNNBNWorkload":
        return self.with_(channels=(2, 2, 2), dense=8)

    def _macs(self) -> tuple[int, int]:
        c1, c2, c3 = self.channels
        conv1 = 28 * 28 * c1 * 9
        convs = conv1 + 14 * 14 * c2 * 9 * c1 + 7 * 7 * c3 * 9 * c2
        return conv1, convs + 3 * 3 * c3 * self.dense + self.dense * 10

    def memory_budget_bytes(self, n_data_rows: int) -> dict:
        c1, c2, c3 = self.channels
        d = self.dense
        params = 9 * c1 + 9 * c1 * c2 + 9 * c2 * c3 + 9 * c3 * d + 10 * d + 10 + 2 * (c1 + c2 + c3 + d)
        per_sample = (784 + 3 * 784 * c1 + 196 * c1 + 3 * 196 * c2 + 49 * c2 + 3 * 49 * c3 + 9 * c3 + 4 * d + 10
                      + 784 * 9 + 196 * 9 * c1 + 49 * 9 * c2)  # outputs of conv, BN, ReLU; im2col columns
        return common.budget_parts(params, 2 * params, self.batch * per_sample, n_data_rows)

    def build_scratchnn(self, seed: int = 0):
        import scratchnn as snn
        from scratchnn.layers import BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU

        snn.set_seed(seed)
        layers = []
        for c in self.channels:
            layers += [Conv2D(c, 3, padding="same", use_bias=False), BatchNorm2D(), ReLU(), MaxPool2D(2)]
        layers += [Flatten(), Dense(self.dense, init="he_normal", use_bias=False), BatchNorm(), ReLU(),
                   Dropout(0.4, seed=seed), Dense(10)]
        m = snn.Sequential(layers)
        m.compile(snn.optimizers.Adam(self.lr), "softmax_cross_entropy")
        m.build(self.input_shape)
        return m

    def build_torch(self, torch, snn_model):
        """``(nn.Sequential, Adam)`` with the scratchnn model's initial weights (BatchNorm: PyTorch's
        momentum 0.1 is scratchnn's 0.9)."""
        nn = torch.nn
        mods, cin = [], 1
        for c in self.channels:
            mods += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            cin = c
        side = 28 // 2 ** len(self.channels)
        mods += [nn.Flatten(), nn.Linear(cin * side * side, self.dense, bias=False), nn.BatchNorm1d(self.dense),
                 nn.ReLU(), nn.Dropout(0.4), nn.Linear(self.dense, 10)]
        net = nn.Sequential(*mods)
        with torch.no_grad():
            weighted = [l for l in snn_model.layers if "W" in l.params]
            torch_layers = [l for l in net if isinstance(l, (nn.Conv2d, nn.Linear))]
            for layer, t in zip(weighted, torch_layers):
                w = layer.params["W"] if isinstance(t, nn.Conv2d) else layer.params["W"].T
                t.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                if t.bias is not None:
                    t.bias.copy_(torch.from_numpy(layer.params["b"]))
        return net, torch.optim.Adam(net.parameters(), lr=self.lr)


CNN_BN = CNNBNWorkload()
