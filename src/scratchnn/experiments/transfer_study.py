"""Transfer learning: MNIST digits 0-4 -> digits 5-9 with few labels, and a GAP CNN on larger images.

Part 1 (MLP 784-256-128): a network trained on digits 0-4 lends its hidden layers to digits 5-9,
of which only ``k`` labelled images per class are available (k = 10, 50, 200; three random
subsets each). Ways to learn the new task with the same number of updates are compared on the
5-9 images of the MNIST test set: the same network from scratch; the frozen first pretrained
layer under new upper layers; both frozen pretrained layers under a new output layer (only the
head learns); and that model then fine-tuned end to end with a 10x smaller learning rate.

Part 2 (CNN with global average pooling): convolutions and pooling work on any image size and
global average pooling turns any feature map into one vector per image, so a CNN trained on 28x28
digits 0-4 runs unchanged on the same digits placed in 36x36 images (centered, or at a random
position). Its pooled features of digits 5-9 (at 28x28 and at 36x36) also feed a new head trained
on 50 labelled images per class; a CNN trained from scratch on those 250 36x36 images is the
baseline. Numbers are on the MNIST test set; nothing is selected on it (all budgets are fixed).

The conclusion weighs the first layer's transfer against the spread over the labelled subsets and
states whether the CNN learned at all (against chance, 1 in 5).
"""
from __future__ import annotations

import math

import numpy as np

from ._common import _pick, ahead, noise, pct, points
from ..datasets.preprocessing import pad_images

MLP_METHODS = ("from scratch", "frozen layer 1 + new layers", "frozen layers 1-2 + new head", "+ fine-tuned end to end")


def _mlp(n_classes):
    from ..layers import Dense, Flatten, ReLU
    from ..model import Sequential

    return Sequential([Flatten(), Dense(256, init="he_normal"), ReLU(), Dense(128, init="he_normal"), ReLU(),
                       Dense(n_classes)])


def _cnn(n_classes, widths):
    from ..layers import Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, ReLU
    from ..model import Sequential

    a, b, c = widths
    return Sequential([Conv2D(a, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(b, 3, padding=1), ReLU(), MaxPool2D(2),
                       Conv2D(c, 3, padding=1), ReLU(), GlobalAvgPool2D(), Dense(n_classes)])


def _train(model, X, y, lr, steps, batch, seed):
    """Adam for about ``steps`` updates (whole epochs), silently."""
    from ..optimizers import Adam

    model.compile(optimizer=Adam(lr), loss="softmax_cross_entropy")
    epochs = max(1, math.ceil(steps * batch / len(X)))
    model.fit(X, y, epochs=epochs, batch_size=batch, verbose=0, seed=seed)
    return model


def run(ctx):
    from ..datasets import scale
    from ..layers import Dense, ReLU
    from ..model import Sequential
    from ..transfer import extract_features, new_head_model, unfreeze

    q = ctx.quick
    (Xtr_u8, ytr), (Xte_u8, yte), name = ctx.image_source()
    rng = np.random.default_rng(ctx.seed)

    def take(X_u8, y, idx, offset):
        return scale(X_u8[idx])[:, None], y[idx] - offset

    n_src, n_src_val = ctx.pick((1000, 300), (12000, 2000), (12000, 2000))
    idx = _pick(ytr, n_src + n_src_val, range(5), rng)
    if len(idx) < n_src + n_src_val:  # the 8x8 digits fallback has fewer images
        n_src = int(0.8 * len(idx))
    Xs, ys = take(Xtr_u8, ytr, idx[:n_src], 0)
    Xs_val, ys_val = take(Xtr_u8, ytr, idx[n_src:], 0)
    src_test = np.flatnonzero(yte < 5)
    tgt_test = np.flatnonzero(yte >= 5)
    if q:
        src_test = rng.choice(src_test, min(300, len(src_test)), replace=False)
        tgt_test = rng.choice(tgt_test, min(300, len(tgt_test)), replace=False)
    Xs_test, ys_test = take(Xte_u8, yte, src_test, 0)
    Xt_test, yt_test = take(Xte_u8, yte, tgt_test, 5)
    tgt_pool = np.flatnonzero(ytr >= 5)
    sizes, seeds = ctx.pick(((10,), (0,)), ((10, 200), (0, 1, 2)), ((10, 50, 200), (0, 1, 2)))
    steps, batch = (60, 32) if q else (300, 32)
    ctx.log(f"{name}: source digits 0-4, {len(Xs)} training images; target digits 5-9 with {sizes} labelled "
            f"images per class x {len(seeds)} subsets; tested on {len(Xt_test)} target test images")

    # -- part 1: MLP ----------------------------------------------------------------------------
    ctx.seed_all()
    pre = _train(_mlp(5), Xs, ys, 1e-3, (2 if q else 5) * len(Xs) // 64, 64, ctx.seed)
    src_val_acc = pre.evaluate(Xs_val, ys_val)["accuracy"]
    ctx.log(f"MLP pretrained on digits 0-4: validation accuracy {src_val_acc:.4f}")
    rows = []
    for k in sizes:
        for s in seeds:
            sub = _pick(ytr[tgt_pool], 5 * k, range(5, 10), np.random.default_rng(1000 + s))
            X, y = take(Xtr_u8, ytr, tgt_pool[sub], 5)
            ctx.seed_all(1 + s)
            models = {"from scratch": _train(_mlp(5), X, y, 1e-3, steps, batch, s)}
            ctx.seed_all(1 + s)
            low = new_head_model(pre, [Dense(128, init="he_normal"), ReLU(), Dense(5)], n_drop=3)
            models["frozen layer 1 + new layers"] = _train(low, X, y, 1e-3, steps, batch, s)
            ctx.seed_all(1 + s)
            head = _train(new_head_model(pre, [Dense(5)], n_drop=1), X, y, 1e-3, steps, batch, s)
            models["frozen layers 1-2 + new head"] = head
            accs = {m: model.evaluate(Xt_test, yt_test)["accuracy"] for m, model in models.items()}
            unfreeze(head)  # then fine-tune everything, 10x smaller learning rate
            fine = _train(head, X, y, 1e-4, steps, batch, s)
            accs["+ fine-tuned end to end"] = fine.evaluate(Xt_test, yt_test)["accuracy"]
            for method, acc in accs.items():
                rows.append({"part": "mlp", "method": method, "labels_per_class": k, "subset": s,
                             "target_test_accuracy": acc})
            ctx.log(f"k={k:3d} subset {s}: " + ", ".join(f"{m} {a:.4f}" for m, a in accs.items()))

    # -- part 2: GAP CNN on larger images ---------------------------------------------------------
    h = Xs.shape[-1]
    big = round(h * 9 / 7)  # 28 -> 36
    # (a quick run's CNN gets enough updates to learn: 9 updates at lr 2e-3 had left it at chance)
    widths = ctx.pick((8, 16, 32), (8, 16, 32), (16, 32, 64))
    n_cnn = min(len(Xs), ctx.pick(1000, 3000, 6000))
    cnn_lr, cnn_epochs, cnn_batch = ctx.pick((3e-3, 4, 32), (3e-3, 3, 32), (2e-3, 4, 64))
    ctx.seed_all()
    cnn = _train(_cnn(5, widths), Xs[:n_cnn], ys[:n_cnn], cnn_lr, cnn_epochs * n_cnn // cnn_batch, cnn_batch, ctx.seed)
    pad_rng = np.random.default_rng(ctx.seed + 7)
    cnn_rows = [("digits 0-4, trained size", f"{h}x{h}", cnn.evaluate(Xs_test, ys_test)["accuracy"]),
                ("digits 0-4, centered in larger image", f"{big}x{big}",
                 cnn.evaluate(pad_images(Xs_test, big), ys_test)["accuracy"]),
                ("digits 0-4, random place in larger image", f"{big}x{big}",
                 cnn.evaluate(pad_images(Xs_test, big, pad_rng), ys_test)["accuracy"])]
    kc = 10 if q else 50
    sub = _pick(ytr[tgt_pool], 5 * kc, range(5, 10), np.random.default_rng(1000))
    X, y = take(Xtr_u8, ytr, tgt_pool[sub], 5)
    X_big, Xt_big = pad_images(X, big, pad_rng), pad_images(Xt_test, big, pad_rng)
    for Xa, Xb, size in ((X, Xt_test, h), (X_big, Xt_big, big)):
        # frozen base as a feature extractor: compute the pooled features once, train only the head
        F_tr, F_te = extract_features(cnn, Xa, n_drop=1), extract_features(cnn, Xb, n_drop=1)
        ctx.seed_all(1)
        head = _train(Sequential([Dense(5)]), F_tr, y, 1e-2, steps, batch, 0)
        cnn_rows.append((f"digits 5-9, {kc}/class: pretrained GAP features + new head", f"{size}x{size}",
                         head.evaluate(F_te, yt_test)["accuracy"]))
    f_small = extract_features(cnn, Xs_test, n_drop=1)
    f_big = extract_features(cnn, pad_images(Xs_test, big), n_drop=1)
    feature_ratio = float(np.linalg.norm(f_big, axis=1).mean() / np.linalg.norm(f_small, axis=1).mean())
    ctx.seed_all(1)
    scratch = _train(_cnn(5, widths), X_big, y, 2e-3, steps // (3 if q else 1), batch, 0)
    cnn_rows.append((f"digits 5-9, {kc}/class: same CNN from scratch", f"{big}x{big}",
                     scratch.evaluate(Xt_big, yt_test)["accuracy"]))
    for setting, size, acc in cnn_rows:
        rows.append({"part": "gap-cnn", "method": setting, "image_size": size, "target_test_accuracy": acc})
        ctx.log(f"GAP CNN {setting} ({size}): accuracy {acc:.4f}")

    fig = _plot(ctx, rows, sizes)
    summary = [f"MLP pretrained on digits 0-4: validation accuracy {src_val_acc:.4f}"]
    for k in sizes:
        parts = []
        for method in MLP_METHODS:
            a = [r["target_test_accuracy"] for r in rows if r["part"] == "mlp" and r["method"] == method
                 and r["labels_per_class"] == k]
            parts.append(f"{method} {np.mean(a):.4f} +- {np.std(a):.4f}")
        summary.append(f"digits 5-9 with {k} labels per class (mean +- std over {len(seeds)} subsets): "
                       + ", ".join(parts))
    summary += [f"GAP CNN, {s} ({size}): test accuracy {a:.4f}" for s, size, a in cnn_rows]
    summary.append(f"GAP CNN: pooled features of {big}x{big} centered images have {feature_ratio:.2f}x the norm of "
                   f"those of the same {h}x{h} images (the zero border enters every channel's average)")
    return ctx.finish(rows, summary, figure=fig, title="Transfer learning", dataset=name,
                      source_train_samples=len(Xs), source_val_accuracy=src_val_acc,
                      source_test_samples=len(Xs_test), target_test_samples=len(Xt_test), target_steps=steps,
                      batch_size=batch, cnn_widths=list(widths), cnn_train_samples=n_cnn,
                      cnn_target_labels_per_class=kc, gap_feature_norm_ratio=feature_ratio)


def _mlp_difference(rows, k, method, n_test):
    """Mean over subsets of (``method`` - from scratch) at ``k`` labels per class, and its standard
    error: the spread of the paired differences over subsets, at least the test set's own noise."""
    acc = {}
    for r in rows:
        if r["part"] == "mlp" and r["labels_per_class"] == k and r["method"] in (method, "from scratch"):
            acc.setdefault(r["subset"], {})[r["method"]] = r["target_test_accuracy"]
    d = np.array([a[method] - a["from scratch"] for a in acc.values()])
    scratch = float(np.mean([a["from scratch"] for a in acc.values()]))
    se = noise(scratch, n_test)
    if len(d) > 1:
        se = max(se, float(d.std(ddof=1) / math.sqrt(len(d))))
    return float(d.mean()), se, scratch


def conclusion(rows, meta):
    """Does the first layer transfer with few labels? Does the GAP CNN learn and run on larger images?"""
    n_test = meta["target_test_samples"]
    sizes = sorted({r["labels_per_class"] for r in rows if r["part"] == "mlp"})
    k = sizes[0]
    d, se, scratch = _mlp_difference(rows, k, "frozen layer 1 + new layers", n_test)
    d_head, se_head, _ = _mlp_difference(rows, k, "frozen layers 1-2 + new head", n_test)
    if d > 2 * se:
        s = (f"With {k} labels per class of digits 5-9, reusing the first layer of an MLP trained on digits 0-4 "
             f"reaches {pct(scratch + d)} against {pct(scratch)} from scratch (+{points(d)}, noise +-{points(se)})")
    else:
        s = (f"With {k} labels per class of digits 5-9, reusing the first layer of an MLP trained on digits 0-4 does "
             f"not beat training from scratch by more than the noise ({pct(scratch + d)} against {pct(scratch)}, "
             f"noise +-{points(se)})")
    if len(sizes) > 1:
        d_big, se_big, _ = _mlp_difference(rows, sizes[-1], "frozen layer 1 + new layers", n_test)
        sign = f"{'+' if d_big >= 0 else '-'}{points(d_big)}"
        if d > 2 * se:
            s += (f", an advantage that {'persists' if d_big > 2 * se_big else 'is gone'} at {sizes[-1]} labels "
                  f"({sign})")
        else:
            s += f"; with {sizes[-1]} labels the difference is {sign}"
    if d_head < -2 * se_head:
        s += (f"; a new head on both frozen layers reaches only {pct(scratch + d_head)}: the second layer is "
              "specific to digits 0-4. ")
    else:
        s += f"; a new head on both frozen layers reaches {pct(scratch + d_head)}, no worse than from scratch. "
    cnn = {(r["method"], r["image_size"]): r["target_test_accuracy"] for r in rows if r["part"] == "gap-cnn"}
    trained = next(a for (m, _), a in cnn.items() if m == "digits 0-4, trained size")
    centered = next(a for (m, _), a in cnn.items() if m == "digits 0-4, centered in larger image")
    big = next(size for (m, size) in cnn if m == "digits 0-4, centered in larger image")
    n_src = meta.get("source_test_samples", n_test)
    chance = 0.2
    if not ahead(trained, chance, math.sqrt(chance * (1 - chance) / n_src), k=3):
        return s + (f"The GAP CNN did not learn digits 0-4 ({pct(trained)}, chance {pct(chance)}), so its part "
                    "shows nothing.")
    kc = meta.get("cnn_target_labels_per_class", 50)
    best_feat = max(a for (m, _), a in cnn.items() if "pretrained GAP features" in m)
    scratch_cnn = next(a for (m, _), a in cnn.items() if "from scratch" in m)
    s += f"The GAP CNN learns digits 0-4 ({pct(trained)}, chance {pct(chance)}) and runs unchanged on {big} images ("
    if ahead(trained, centered, noise(trained, n_src)):
        s += f"{pct(centered)}, {points(trained - centered)} lower"
        ratio = meta.get("gap_feature_norm_ratio")
        s += (f": the zero border shrinks its pooled features to {ratio:.2f}x their norm)" if ratio and ratio < 1
              else ")")
    else:
        s += f"{pct(centered)}, as good as at the trained size)"
    s += f"; with {kc} labels per class of digits 5-9 its frozen features + a new head reach {pct(best_feat)}, "
    if ahead(best_feat, scratch_cnn, noise(scratch_cnn, n_test)):
        s += f"ahead of the same CNN trained from scratch ({pct(scratch_cnn)})."
    elif ahead(scratch_cnn, best_feat, noise(scratch_cnn, n_test)):
        s += f"behind the same CNN trained from scratch ({pct(scratch_cnn)}): these features are not enough."
    else:
        s += f"as far as the noise tells the same as the CNN trained from scratch ({pct(scratch_cnn)})."
    return s


def _plot(ctx, rows, sizes):
    fig, ax = ctx.figure(1, 2, width=5.6, height=4.0)
    for i, method in enumerate(MLP_METHODS):
        acc = [[r["target_test_accuracy"] for r in rows if r["part"] == "mlp" and r["method"] == method
                and r["labels_per_class"] == k] for k in sizes]
        ax[0, 0].errorbar(sizes, [np.mean(a) for a in acc], yerr=[np.std(a) for a in acc], marker="o", capsize=3,
                          color=f"C{i}", label=method)
    ax[0, 0].set(xscale="log", xlabel="labelled images per class (digits 5-9)", ylabel="test accuracy on digits 5-9",
                 title="MLP: transfer from digits 0-4")
    ax[0, 0].set_xticks(sizes, [str(k) for k in sizes])
    ax[0, 0].legend(fontsize=8)
    cnn = [r for r in rows if r["part"] == "gap-cnn"]
    y = np.arange(len(cnn))
    ax[0, 1].barh(y, [r["target_test_accuracy"] for r in cnn], color=["C0", "C0", "C0", "C2", "C2", "C3"][: len(cnn)])
    for yi, r in zip(y, cnn):
        ax[0, 1].text(0.02, yi, f"{r['target_test_accuracy']:.3f}", va="center", color="white", fontsize=8,
                      fontweight="bold")
    ax[0, 1].set_yticks(y, [f"{r['method']} ({r['image_size']})" for r in cnn], fontsize=7)
    ax[0, 1].invert_yaxis()
    ax[0, 1].set(xlim=(0, 1), xlabel="test accuracy", title="CNN with global average pooling")
    for a in ax[0]:
        a.grid(True, alpha=0.3)
    return fig
