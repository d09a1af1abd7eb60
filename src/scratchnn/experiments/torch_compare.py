"""The same networks trained in scratchnn and in PyTorch (optional): accuracy and time side by side.

Both frameworks start from the same float32 weights (copied from scratchnn into ``torch.nn``), see
the same mini-batches in the same order (the permutation ``Sequential.fit(seed=...)`` draws) and
take the same plain SGD steps, so their losses and weights should agree to float32 rounding; the
difference in seconds per epoch is then only the implementation. PyTorch gets as many threads as
NumPy's BLAS has. Without PyTorch only the NumPy side runs, and the summary says so.
"""
from __future__ import annotations

import time

import numpy as np
from ..errors import InvalidArgumentError
from ._common import pct


def _networks(budget, n_train, n_classes):
    """name -> (layers, training samples, epochs)."""
    from ..layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    mlp_epochs = {"quick": 2, "default": 3, "full": 5}[budget]
    nets = {"mlp 784-128-64-10": ([Flatten(), Dense(128, init="he_normal"), ReLU(), Dense(64, init="he_normal"),
                                   ReLU(), Dense(n_classes)], n_train, mlp_epochs)}
    if budget != "quick":
        nets["cnn conv8-pool-conv16-pool-64-10"] = (
            [Conv2D(8, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(16, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
             Dense(64, init="he_normal"), ReLU(), Dense(n_classes)], 15000 if budget == "full" else 5000, 2)
    return nets


def to_torch(model):
    """A ``torch.nn.Sequential`` with ``model``'s layers and a copy of its weights (Dense, Conv2D, ReLU,
    MaxPool2D, Flatten)."""
    import torch
    from torch import nn

    from ..layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    mods = []
    for l in model.layers:
        if isinstance(l, Dense):
            m = nn.Linear(l.in_features, l.units)
            m.weight.data = torch.from_numpy(np.ascontiguousarray(l.params["W"].T))  # torch stores (out, in)
            m.bias.data = torch.from_numpy(l.params["b"].copy())
        elif isinstance(l, Conv2D):
            if not isinstance(l.padding, int):
                raise InvalidArgumentError(f"to_torch handles an integer padding, {l.label} has {l.padding!r}")
            m = nn.Conv2d(l.in_channels, l.filters, l.kernel_size, stride=l.stride, padding=l.padding)
            m.weight.data = torch.from_numpy(l.params["W"].copy())  # same (F, C, kh, kw) layout
            m.bias.data = torch.from_numpy(l.params["b"].copy())
        elif isinstance(l, ReLU):
            m = nn.ReLU()
        elif isinstance(l, MaxPool2D):
            m = nn.MaxPool2d(l.pool_size, l.stride)
        elif isinstance(l, Flatten):
            m = nn.Flatten()
        else:
            raise InvalidArgumentError(f"to_torch has no PyTorch counterpart for {l.label}")
        mods.append(m)
    return nn.Sequential(*mods)


def _train_torch(net, X, y, epochs, batch, lr, seed):
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)  # the permutations Sequential.fit(seed=seed) draws
    losses, times = [], []
    n = len(X)
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for b in range(0, n, batch):
            idx = order[b:b + batch]
            xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
            opt.zero_grad()
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        times.append(time.perf_counter() - t0)
        losses.append(total / n)
    return losses, times


def _accuracy_torch(net, X, y):
    import torch

    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(X[i:i + 1000])).argmax(1) for i in range(0, len(X), 1000)])
    return float((pred.numpy() == y).mean())


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return max((i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"), default=None)


def run(ctx):
    from ..model import Sequential
    from ..optimizers import SGD

    q = ctx.quick
    try:
        import torch
    except ImportError:
        torch = None
        ctx.log("PyTorch is not installed (pip install torch): only the NumPy side runs")
    data = ctx.images(ctx.pick(1000, 20000, 55000), ctx.pick(200, 5000, 5000), n_test=500 if q else 0,
                      allow_spiral=False)
    batch, lr = 64, 0.05
    threads = _blas_threads()
    if torch is not None:
        old_threads = torch.get_num_threads()
        torch.set_num_threads(threads or old_threads)
    ctx.log(f"{data.name}: up to {len(data.X)} training / {len(data.X_test)} test samples; SGD lr {lr}, batch {batch}; "
            f"BLAS threads {threads}, torch threads {torch.get_num_threads() if torch else '-'}")
    rows, curves = [], {}
    try:
        for net_name, (layers, n, epochs) in _networks(ctx.budget, len(data.X), data.n_classes).items():
            X, y = data.X[:n], data.y[:n]
            X = X if "cnn" in net_name else X.reshape(len(X), -1)
            Xt = data.X_test if "cnn" in net_name else data.X_test.reshape(len(data.X_test), -1)
            ctx.seed_all()
            model = Sequential(layers)
            model.build(X.shape[1:])
            net = to_torch(model) if torch is not None else None  # same initial weights
            model.compile(optimizer=SGD(lr), loss="softmax_cross_entropy")
            h = model.fit(X, y, epochs=epochs, batch_size=batch, verbose=0, seed=ctx.seed).history
            np_acc = model.evaluate(Xt, data.y_test)["accuracy"]
            rows.append({"network": net_name, "framework": "scratchnn (NumPy)", "train_samples": n, "epochs": epochs,
                         "test_accuracy": np_acc,
                         "final_train_loss": h["loss"][-1], "seconds_per_epoch": float(np.mean(h["time"])),
                         "max_weight_difference": None})
            curves[(net_name, "numpy")] = h["loss"]
            ctx.log(f"{net_name} NumPy: test acc {np_acc:.4f}, {rows[-1]['seconds_per_epoch']:.2f} s/epoch")
            if net is None:
                continue
            losses, times = _train_torch(net, X, y, epochs, batch, lr, ctx.seed)
            t_acc = _accuracy_torch(net, Xt, data.y_test)
            ours = [l.params["W"] for l in model.layers if "W" in l.params]
            theirs = [m.weight.detach().numpy() for m in net if hasattr(m, "weight")]
            diff = max(float(np.abs((a.T if a.ndim == 2 else a) - b).max()) for a, b in zip(ours, theirs))
            rows.append({"network": net_name, "framework": f"PyTorch {torch.__version__}", "train_samples": n,
                         "epochs": epochs, "test_accuracy": t_acc, "final_train_loss": losses[-1],
                         "seconds_per_epoch": float(np.mean(times)), "max_weight_difference": diff,
                         "epoch1_loss_difference": abs(losses[0] - h["loss"][0])})
            rows[-2]["max_weight_difference"] = diff
            rows[-2]["epoch1_loss_difference"] = rows[-1]["epoch1_loss_difference"]
            curves[(net_name, "torch")] = losses
            ctx.log(f"{net_name} PyTorch: test acc {t_acc:.4f}, {rows[-1]['seconds_per_epoch']:.2f} s/epoch, "
                    f"largest weight difference {diff:.2e}, epoch-1 loss difference "
                    f"{rows[-1]['epoch1_loss_difference']:.1e}")
    finally:
        if torch is not None:
            torch.set_num_threads(old_threads)
    fig = _plot(ctx, rows, curves, torch is not None)
    summary = [f"{r['network']}, {r['framework']}, {r['train_samples']} images x {r['epochs']} epochs: test accuracy "
               f"{r['test_accuracy']:.4f}, final training loss {r['final_train_loss']:.4f}, "
               f"{r['seconds_per_epoch']:.2f} s per epoch" for r in rows]
    summary += [f"{r['network']}: epoch-1 mean loss differs by {r['epoch1_loss_difference']:.1e}; largest |weight "
                f"difference| after training {r['max_weight_difference']:.2e}"
                for r in rows if r["framework"].startswith("PyTorch")]
    if torch is None:
        summary.append("PyTorch is not installed (pip install torch): the comparison was skipped")
    title = ("scratchnn (NumPy) against PyTorch" if torch is not None else
             "scratchnn (NumPy) alone: PyTorch is not installed, nothing was compared")
    return ctx.finish(rows, summary, figure=fig, title=title, dataset=data.name, test_samples=len(data.X_test),
                      batch_size=batch,
                      optimizer=f"SGD lr {lr}", blas_threads=threads,
                      torch_available=torch is not None)


def conclusion(rows, meta):
    """Do both frameworks compute the same network, and which is faster on each?"""
    threads = meta.get("blas_threads")
    on = f"on {threads} thread{'s' if threads != 1 else ''}" if threads else "here"
    ours = [r for r in rows if r["framework"].startswith("scratchnn")]
    theirs = {r["network"]: r for r in rows if r["framework"].startswith("PyTorch")}
    if not theirs:
        mlp = ours[0]
        return (f"PyTorch is not installed (pip install torch), so nothing was compared: scratchnn alone trains the "
                f"{mlp['network']} to {pct(mlp['test_accuracy'])} test accuracy at {mlp['seconds_per_epoch']:.2f} s "
                f"per epoch {on}.")
    same, parts = True, []
    for a in ours:
        b = theirs[a["network"]]
        if not (b["epoch1_loss_difference"] < 1e-4 and abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.01):
            same = False
        ratio = b["seconds_per_epoch"] / max(a["seconds_per_epoch"], 1e-9)
        kind = a["network"].split()[0].upper()
        faster = (f"scratchnn {ratio:.1f}x faster" if ratio >= 1.1 else f"PyTorch {1 / ratio:.1f}x faster"
                  if ratio <= 1 / 1.1 else "equally fast")
        parts.append(f"{kind} {a['seconds_per_epoch']:.2f} against {b['seconds_per_epoch']:.2f} s per epoch "
                     f"({faster})")
    worst_loss = max(theirs[a["network"]]["epoch1_loss_difference"] for a in ours)
    worst_acc = max(abs(a["test_accuracy"] - theirs[a["network"]]["test_accuracy"]) for a in ours)
    if same:
        s = (f"From the same weights and batches scratchnn and PyTorch compute the same networks (epoch-1 loss within "
             f"{worst_loss:.0e}, " + ("the same test accuracy)" if worst_acc == 0 else
                                       f"test accuracy within {100 * worst_acc:.2f} points)"))
    else:
        s = (f"From the same weights and batches scratchnn and PyTorch do not agree (epoch-1 loss differs by up to "
             f"{worst_loss:.1e}, test accuracy by {100 * worst_acc:.2f} points)")
    return s + f"; {on}: " + ", ".join(parts) + "."


def _plot(ctx, rows, curves, with_torch=True):
    fig, ax = ctx.figure(1, 2)
    for i, ((net, fw), losses) in enumerate(curves.items()):
        ax[0, 0].plot(np.arange(1, len(losses) + 1), losses, "-" if fw == "numpy" else "--", marker="o", ms=4,
                      color=f"C{list(dict.fromkeys(n for n, _ in curves)).index(net)}",
                      label=f"{net} ({'scratchnn' if fw == 'numpy' else 'PyTorch'})")
    ax[0, 0].set(xlabel="epoch", ylabel="training loss",
                 title="Same weights, batches and steps" if with_torch else "scratchnn's training loss")
    labels = [f"{r['network'].split()[0]}\n{r['framework'].split()[0]}" for r in rows]
    bars = ax[0, 1].bar(np.arange(len(rows)), [r["seconds_per_epoch"] for r in rows],
                        color=["C0" if r["framework"].startswith("scratchnn") else "C1" for r in rows])
    for b, r in zip(bars, rows):
        ax[0, 1].text(b.get_x() + b.get_width() / 2, b.get_height(), f"acc {r['test_accuracy']:.4f}", ha="center",
                      va="bottom", fontsize=8)
    ax[0, 1].set_xticks(np.arange(len(rows)), labels, fontsize=8)
    ax[0, 1].set(ylabel="seconds per epoch", title="Training time (test accuracy on top)")
    for a in ax[0]:
        a.grid(True, alpha=0.3)
    ax[0, 0].legend(fontsize=7)
    return fig
