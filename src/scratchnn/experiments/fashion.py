"""Why Fashion-MNIST is harder than MNIST: the same network on both, accuracy per class, the confusions.

One MLP (784-100-10, leaky ReLU, inputs standardized with training statistics, Adam) trains on equal
subsets of MNIST and Fashion-MNIST with the same budget. The study reports both test accuracies,
Fashion-MNIST's accuracy per class, the pairs of classes it confuses most, and a grid of misclassified
shirts: shirts, T-shirts, pullovers and coats share one silhouette at 28x28 pixels, where digits differ
in their strokes.
"""
from __future__ import annotations

import numpy as np

from ._common import DataUnavailable

SETS = ("mnist", "fashion-mnist")


def _load(ctx, name, n_train, n_val):
    from .. import recipe
    from ..datasets import DatasetNotFoundError

    try:  # (the smoke test does not download: it must take seconds, and there is no stand-in data set)
        return recipe.load_data(name, ctx.data_dir, limit=n_train + n_val, val_size=n_val, seed=ctx.seed,
                                download=not ctx.quick)
    except DatasetNotFoundError as e:
        also = ", even with --quick (which does not download)" if ctx.quick else ""
        raise DataUnavailable(f"the fashion study needs MNIST and Fashion-MNIST{also}: {e}", quick_helps=False) from None


def _train(ctx, data, epochs):
    from ..layers import Dense, Flatten, LeakyReLU, Standardize
    from ..model import Sequential
    from ..optimizers import Adam

    ctx.seed_all()
    front = Standardize(name="standardize")
    front.adapt(data.X_train)
    model = Sequential([front, Flatten(), Dense(100, init="he_normal"), LeakyReLU(0.01), Dense(10)])
    model.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
    model.fit(data.X_train, data.y_train, epochs=epochs, batch_size=64, validation_data=(data.X_val, data.y_val),
              verbose=0, seed=ctx.seed)
    return model


def confusions(y, pred, names, top=3):
    """The ``top`` most frequent (true, predicted) mistakes as ``(true name, predicted name, count, share of true)``."""
    n = len(names)
    cm = np.bincount(y * n + pred, minlength=n * n).reshape(n, n)
    np.fill_diagonal(cm, 0)
    order = np.argsort(cm, axis=None)[::-1][:top]
    return [(names[i // n], names[i % n], int(cm.flat[i]), cm.flat[i] / max(1, int((y == i // n).sum())))
            for i in order if cm.flat[i]]


def run(ctx):
    from .. import plots

    n_train, n_val, epochs = ctx.pick((3000, 500, 3), (20000, 2000, 10), (20000, 2000, 10))
    ctx.log(f"784-100-10 leaky ReLU on standardized inputs, Adam 1e-3, batch 64, {epochs} epochs, {n_train} training "
            f"images of each data set; all 10,000 test images")
    rows, results = [], {}
    for name in SETS:
        data = _load(ctx, name, n_train, n_val)
        model = _train(ctx, data, epochs)
        pred = model.predict_classes(data.X_test)
        names = data.info["class_names"]
        acc = float((pred == data.y_test).mean())
        per_class = [float((pred[data.y_test == k] == k).mean()) for k in range(10)]
        results[name] = dict(acc=acc, per_class=per_class, names=names, pred=pred, data=data)
        rows.append({"dataset": name, "class": "all", "test_accuracy": acc})
        rows += [{"dataset": name, "class": names[k], "test_accuracy": per_class[k]} for k in range(10)]
        ctx.log(f"{name}: test accuracy {acc:.4f}")
    m, f = results["mnist"], results["fashion-mnist"]
    mixed = confusions(f["data"].y_test, f["pred"], f["names"])
    meta = dict(n_train=n_train, epochs=epochs, test_samples=len(f["data"].y_test),
                confusions=[{"true": a, "predicted": b, "count": c, "share": sh} for a, b, c, sh in mixed])
    summary = _sentences(rows, meta)
    fig, axes = ctx.figure(1, 2, width=5.6, height=4.0)
    ax = axes[0][0]
    x = np.arange(10)
    ax.bar(x - 0.2, m["per_class"], 0.4, label=f"MNIST ({m['acc']:.1%})")
    ax.bar(x + 0.2, f["per_class"], 0.4, label=f"Fashion-MNIST ({f['acc']:.1%})")
    ax.set_xticks(x, [f"{k}\n{f['names'][k][:7]}" for k in range(10)], fontsize=7)
    ax.set_ylim(min(0.5, min(f["per_class"]) - 0.05), 1.0)
    ax.set_ylabel("test accuracy of the class")
    ax.set_title("the same MLP, per class (digit / garment)")
    ax.legend(loc="lower left")
    ax = axes[0][1]
    n = 10
    cm = np.bincount(f["data"].y_test * n + f["pred"], minlength=n * n).reshape(n, n)
    np.fill_diagonal(cm, 0)  # the mistakes only: the right answers would drown them
    ax.imshow(cm, cmap="Reds")
    ax.set_xticks(range(n), [s[:7] for s in f["names"]], rotation=60, fontsize=7)
    ax.set_yticks(range(n), [s[:7] for s in f["names"]], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Fashion-MNIST's mistakes (diagonal left out)")
    shirts = f["data"].y_test == f["names"].index("Shirt")
    path = plots.plot_misclassified(f["data"].X_test[shirts], f["data"].y_test[shirts], f["pred"][shirts],
                                    ctx.path("misclassified_shirts.png"), max_images=30, class_names=f["names"])
    ctx.files.append(str(path))
    return ctx.finish(rows, summary, figure=fig, title="The same MLP on MNIST and Fashion-MNIST", **meta)


def _sentences(rows, meta):
    """The findings, one sentence each, from the table and the confusions."""
    acc = {r["dataset"]: r["test_accuracy"] for r in rows if r["class"] == "all"}
    m, f = acc["mnist"], acc["fashion-mnist"]
    per = {d: [r for r in rows if r["dataset"] == d and r["class"] != "all"] for d in SETS}
    if f < m:
        worst = min(per["fashion-mnist"], key=lambda r: r["test_accuracy"])
        out = [f"The same network and budget reach {m:.1%} on MNIST but {f:.1%} on Fashion-MNIST, "
               f"{100 * (m - f):.1f} points lower.",
               f"Fashion-MNIST's weakest class is {worst['class']} ({worst['test_accuracy']:.1%} of its test images "
               f"right; MNIST's weakest digit: {min(r['test_accuracy'] for r in per['mnist']):.1%})."]
    else:
        out = [f"These numbers do not show Fashion-MNIST as harder: {f:.1%} against MNIST's {m:.1%} "
               "(too small a budget? try without --quick)."]
    mixed = meta.get("confusions") or []
    if mixed:
        a = mixed[0]
        out.append(f"The most frequent mistake is {a['true']} taken for {a['predicted']}: {a['count']} test images "
                   f"({a['share']:.1%} of the {a['true']} images); next: "
                   + ", ".join(f"{x['true']} as {x['predicted']} ({x['count']})" for x in mixed[1:]) + ".")
    return out


def conclusion(rows, meta):
    """Is Fashion-MNIST harder for the same network, and where does it fail?"""
    return " ".join(_sentences(rows, meta))
