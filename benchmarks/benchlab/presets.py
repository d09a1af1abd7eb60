"""Throughput where people train (issue 18, row 4): the presets' full recipes, augmentation included.

For each preset (default ``mlp``, ``cnn``, ``cnn-bn``) scratchnn trains exactly what
``scratchnn train --model P`` trains: the preset's network (its ``RandomShift`` first) compiled by
``scratchnn.recipe`` with the preset's optimizer, learning-rate schedule, L2 and batch size, through
``model.fit``. PyTorch trains the same network (``scratchnn.interop.to_torch``, the same initial
weights) with the same optimizer and batch size, the ``RandomShift`` replaced by its equivalent: each
image shifted by its own random whole number of pixels in ``[-k, k]`` on each axis, zero fill
(``TorchRandomShift``), in the fastest fair eager loop (``torch.randperm`` and tensor gathers).

Reported: training images per second (best of alternating rounds, one epoch of ``--samples``
images each) and the minutes a whole preset run would take at that rate (its epochs x 55,000
training images; the per-epoch validation pass is not included).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import common, machine
from .measure import time_rounds

PRESETS = ("mlp", "cnn", "cnn-bn")
TRAIN_IMAGES = 55_000  # MNIST's training set less the 5,000 validation images the CLI holds out


def build_scratchnn(name: str, seed: int = 0):
    """``(model, settings)``: the preset as ``scratchnn train --model name`` builds it."""
    from scratchnn import recipe, set_seed

    set_seed(seed)
    s = recipe.check_settings({"dataset": "mnist", "model": name, "seed": seed})
    return recipe.build_model(s, recipe.dataset_info("mnist"))


def torch_random_shift(torch, k: int):
    """An ``nn.Module`` doing what ``scratchnn.layers.RandomShift(k)`` does (identity in eval mode)."""

    class TorchRandomShift(torch.nn.Module):
        def forward(self, x):
            if not self.training:
                return x
            n, c, h, w = x.shape
            padded = torch.nn.functional.pad(x, (k, k, k, k))
            windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (N, C, 2k+1, 2k+1, H, W), a view
            a, b = torch.randint(0, 2 * k + 1, (2, n))
            return windows[torch.arange(n), :, a, b]  # one window per image, as scratchnn does

    return TorchRandomShift()


def build_torch(torch, model, settings):
    """``(nn.Sequential, optimizer)``: ``model``'s network and weights in PyTorch, its augmentation
    included, with the preset's optimizer (L2 as weight decay on the weights only)."""
    from scratchnn.interop import to_torch
    from scratchnn.layers import RandomShift

    net = to_torch(model)
    for (name, module), layer in zip(list(net.named_children()), model.layers):
        if isinstance(layer, RandomShift):
            setattr(net, name, torch_random_shift(torch, layer.max_shift))
    net.train()
    l2 = settings.get("l2") or 0.0
    weights = [p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() > 1]
    others = [p for n, p in net.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    groups = [{"params": weights, "weight_decay": 2 * l2}, {"params": others, "weight_decay": 0.0}]
    lr, opt = float(model.optimizer.lr), settings["optimizer"]  # (the schedule's first value)
    if opt == "adam":
        optimizer = torch.optim.Adam(groups, lr=lr)
    else:
        momentum = settings.get("momentum") or (0.9 if opt in ("momentum", "nesterov") else 0.0)
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=opt == "nesterov")
    return net, optimizer


class ScratchnnPreset:
    name = "scratchnn"

    def __init__(self, preset, seed=0):
        self.model, self.settings = build_scratchnn(preset, seed)

    def train_epoch(self, X, y) -> float:
        t0 = time.perf_counter()
        self.model.fit(X, y, epochs=1, batch_size=self.settings["batch_size"], verbose=0, shuffle=True)
        return time.perf_counter() - t0


class TorchPreset:
    name = "torch"

    def __init__(self, torch, ref: ScratchnnPreset):
        self.torch = torch
        self.net, self.opt = build_torch(torch, ref.model, ref.settings)
        self.batch = ref.settings["batch_size"]
        self._t = None

    def train_epoch(self, X, y) -> float:
        torch = self.torch
        if self._t is None or self._t[0] is not X:
            self._t = (X, torch.from_numpy(X), torch.from_numpy(y))
        Xt, yt = self._t[1], self._t[2]
        F = torch.nn.functional
        t0 = time.perf_counter()
        self.net.train()
        perm = torch.randperm(len(Xt))
        for i in range(0, len(Xt), self.batch):
            idx = perm[i:i + self.batch]
            loss = F.cross_entropy(self.net(Xt[idx]), yt[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0


def main(argv=None, default_json=None):
    """``benchmarks/bench_presets.py``."""
    ap = argparse.ArgumentParser(description="Training throughput of the presets' full recipes (augmentation "
                                             "included), scratchnn against PyTorch CPU eager.")
    ap.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated (default {','.join(PRESETS)})")
    ap.add_argument("--threads", type=common.whole_numbers, default="2",
                    help="comma-separated thread counts (default 2: what users get)")
    ap.add_argument("--rounds", type=common.whole_number, default=3)
    ap.add_argument("--samples", type=common.whole_number, default=10_000, help="training images per timed epoch")
    ap.add_argument("--data-dir", help="folder holding the MNIST files")
    ap.add_argument("--random-data", action="store_true", help="random images (speed only)")
    ap.add_argument("--json", default=default_json or "bench_presets.json")
    args = ap.parse_args(argv)
    from scratchnn.presets import PRESETS as KNOWN

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    bad = [p for p in presets if p not in KNOWN]
    if bad or not presets:
        ap.error(f"--presets {args.presets!r}: choose from {', '.join(KNOWN)}")
    machine.warn_openblas_env()
    data = common.load_data(n_train=args.samples, n_val=16, data_dir=args.data_dir, random=args.random_data)
    X, y = common.as_images(data["X_train"]), data["y_train"]
    torch = common.torch_or_none()
    if torch is None:
        print("PyTorch is not installed: measuring scratchnn alone (pip install torch for the comparison)")
    results = {"samples": len(X), "rows": []}
    for t in args.threads:
        for preset in presets:
            with common.threads(t):
                probe = machine.gemm_probe()
                ref = ScratchnnPreset(preset)
                runners = {"scratchnn": ref}
                if torch is not None:
                    runners["torch"] = TorchPreset(torch, ref)
                times, loads = time_rounds(runners, X, y, args.rounds, probe)
            epochs = ref.settings["epochs"]
            row = {"preset": preset, "threads": t, "batch_size": ref.settings["batch_size"], "epochs": epochs}
            for k, v in times.items():
                ips = len(X) / min(v)
                row[k] = {"images_per_s": ips, "preset_minutes": epochs * TRAIN_IMAGES / ips / 60, "times_s": v,
                          "host_speed_best": loads[k][v.index(min(v))]["host_speed"]}
            line = (f"{preset:8s} {t} thread(s), batch {row['batch_size']}, {epochs} epochs: scratchnn "
                    f"{row['scratchnn']['images_per_s']:,.0f} images/s ({row['scratchnn']['preset_minutes']:.1f} min)")
            if "torch" in row:
                row["scratchnn_speed_vs_torch"] = row["scratchnn"]["images_per_s"] / row["torch"]["images_per_s"]
                line += (f" | torch {row['torch']['images_per_s']:,.0f} images/s "
                         f"({row['torch']['preset_minutes']:.1f} min) | scratchnn speed / torch "
                         f"{row['scratchnn_speed_vs_torch']:.2f}x")
            print(line, flush=True)
            if min(x["host_speed_best"] or 1.0 for x in (row[k] for k in times)) < machine.HOST_FAST:
                print("   WARNING: the host ran slowed before a best epoch: figures are unreliable")
            results["rows"].append(row)
    results["env"] = machine.environment(include_torch=torch is not None)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results
