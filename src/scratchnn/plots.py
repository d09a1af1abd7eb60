"""PNG plots for a training run: curves, confusion matrix, image grids, weights and filters.

Every ``plot_*`` function takes plain arrays and a ``path``, draws on a ``matplotlib.figure.Figure``
with the Agg canvas (pyplot and its global state are never touched), writes the PNG through a
temporary file in the same folder, releases the figure and returns the path as a ``pathlib.Path``.
matplotlib is imported inside the functions, so ``import scratchnn.plots`` costs only NumPy.

Example:
    >>> from scratchnn import plots
    >>> history = model.fit(X, y, epochs=5, validation_data=(X_val, y_val))
    >>> plots.plot_history(history, "runs/mlp/history.png")
    >>> plots.plot_confusion_matrix(y_val, model.predict(X_val).argmax(1), "runs/mlp/cm.png")
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .backend import as_numpy
from .errors import InvalidArgumentError

_DPI = 100
_TILE = 1.1  # inches per image tile in grids


# ----------------------------------------------------------------------------- shared helpers

def _new_figure(figsize):
    """A Figure bound to the Agg canvas; no pyplot, no GUI backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, tight=False) -> Path:
    """Write ``fig`` as PNG to a temporary sibling and move it onto ``path``.

    ``tight`` runs one tight-layout pass first (a third of constrained layout's cost). The figure
    is bound to no pyplot manager, so dropping it frees it: there is nothing else to close.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if tight:
            fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=_DPI)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _labels(a, name) -> np.ndarray:
    """Class ids of shape (N,) as int64; (N, K) scores or one-hot rows are reduced with argmax."""
    a = as_numpy(a)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 2:
        a = a.argmax(axis=1)
    if a.ndim != 1:
        raise InvalidArgumentError(f"{name} must be class ids of shape (N,) or scores of shape (N, K), "
                         f"received shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a) & (a == np.round(a))):
            raise InvalidArgumentError(f"{name} must hold integer class ids, received dtype {a.dtype} "
                             f"(first values {a[:5].tolist()})")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise InvalidArgumentError(f"{name} must hold class ids >= 0, found {a.min()}")
    return a


def _paired_labels(y_true, y_pred):
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise InvalidArgumentError(f"y_true and y_pred must have the same length, received {len(t)} and {len(p)}")
    return t, p


def _class_name(k, class_names, limit=None):
    name = str(class_names[k]) if class_names is not None and k < len(class_names) else str(k)
    return name if limit is None or len(name) <= limit else name[:limit - 1] + "\u2026"


def _per_tile_unit_range(tiles):
    """Scale each tile of (n, h, w) to [0, 1] on its own (constant tiles become 0)."""
    lo = tiles.min(axis=(1, 2), keepdims=True)
    hi = tiles.max(axis=(1, 2), keepdims=True)
    return (tiles - lo) / np.where(hi > lo, hi - lo, 1.0)


def _mosaic(tiles, ncols, pad, title_px, fill):
    """Lay (n, h, w[, 3]) tiles out row-major in one canvas, each cell = title band, tile, pad."""
    n, h, w = tiles.shape[:3]
    nrows = math.ceil(n / ncols)
    cell = np.full((nrows * ncols, title_px + h + pad, w + pad) + tiles.shape[3:], fill, dtype=np.float64)
    cell[:n, title_px:title_px + h, :w] = tiles
    # (rows, cols, cell_h, cell_w, ...) -> (rows, cell_h, cols, cell_w, ...) -> one image
    grid = cell.reshape((nrows, ncols) + cell.shape[1:]).swapaxes(1, 2)
    canvas = grid.reshape((nrows * cell.shape[1], ncols * cell.shape[2]) + tiles.shape[3:])
    return canvas[:canvas.shape[0] - pad, :canvas.shape[1] - pad]


def _tile_figure(tiles, ncols, titles=None, title_color="black", suptitle=None, colorbar_label=None,
                 cmap="gray", **imshow_kw):
    """One figure showing (n, h, w) or (n, h, w, 3) tiles as a single image with titles above tiles.

    Drawing one mosaic in one Axes keeps large grids fast (an Axes per tile costs ~20 ms each).
    """
    import matplotlib

    if max(tiles.shape[1:3]) < 24:
        # blow small tiles (3x3 kernels) up by pixel repetition so gaps and title bands can be thin
        k = math.ceil(24 / max(tiles.shape[1:3]))
        tiles = tiles.repeat(k, axis=1).repeat(k, axis=2)
    n, h, w = tiles.shape[:3]
    ncols = max(1, min(int(ncols), n))
    scale = _TILE / max(h, w)  # inches per image pixel
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    pad = max(1, round(0.08 / scale))
    title_px = math.ceil((0.03 + lines * 0.15) / scale) if lines else 0
    canvas = _mosaic(tiles, ncols, pad, title_px, fill=1.0 if tiles.ndim == 4 else np.nan)
    bottom, top = 0.1, 0.45 if suptitle else 0.1
    cbar = 0.9 if colorbar_label else 0.0
    ax_w, ax_h = canvas.shape[1] * scale, canvas.shape[0] * scale
    width = max(ax_w + cbar + 0.2, 3.0)  # at least wide enough for a title
    height = bottom + ax_h + top
    left = (width - cbar - ax_w) / 2
    fig = _new_figure((width, height))
    ax = fig.add_axes([left / width, bottom / height, ax_w / width, ax_h / height])
    ax.set_axis_off()
    if tiles.ndim == 3:
        imshow_kw["cmap"] = matplotlib.colormaps[cmap].with_extremes(bad="white")
    image = ax.imshow(canvas, interpolation="nearest", aspect="auto", **imshow_kw)
    if titles is not None:
        for i, text in enumerate(titles):
            r, c = divmod(i, ncols)
            ax.text(c * (w + pad) + (w - 1) / 2, r * (title_px + h + pad) + title_px - 0.5, str(text),
                    ha="center", va="bottom", fontsize=8, color=title_color, linespacing=1.0)
    if colorbar_label:
        cax = fig.add_axes([(left + ax_w + 0.15) / width, bottom / height, 0.15 / width, ax_h / height])
        fig.colorbar(image, cax=cax).set_label(colorbar_label)
    if suptitle:
        fig.suptitle(suptitle, y=1 - 0.08 / height, va="top")
    return fig


def _to_images(images, name="images"):
    """(N, H, W), (N, 1, H, W), (N, H, W, 1), (N, 3, H, W) or (N, H, W, 3) -> (N, H, W[, 3]), is_rgb."""
    x = as_numpy(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 4 and x.shape[1] == 3 and x.shape[-1] not in (3, 4):
        x = x.transpose(0, 2, 3, 1)
    if x.ndim == 3:
        return x, False
    if x.ndim != 4 or x.shape[-1] not in (3, 4):
        raise InvalidArgumentError(f"{name} must have shape (N, H, W), (N, 1, H, W), (N, 3, H, W) or (N, H, W, 3), "
                         f"received shape {np.shape(images)}")
    if x.dtype != np.uint8:
        # imshow needs RGB floats in [0, 1]: rescale each image that falls outside
        x = x.astype(np.float64)
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
        x = np.where((lo < 0) | (hi > 1), (x - lo) / np.maximum(hi - lo, 1e-12), x)
    return x, True


def _square_shape(features, name):
    side = math.isqrt(features)
    if side * side == features:
        return (side, side)
    side = math.isqrt(features // 3)
    if features % 3 == 0 and 3 * side * side == features:
        return (3, side, side)
    raise InvalidArgumentError(f"cannot guess the image shape of {name} rows with {features} features; "
                     f"pass image_shape=(H, W)")


# ----------------------------------------------------------------------------- curves

def _history_dict(history) -> Mapping:
    h = getattr(history, "history", history)
    if not isinstance(h, Mapping):
        raise InvalidArgumentError(f"history must be a dict of metric lists or an object with a .history dict, "
                         f"received {type(history).__name__}")
    return h


def plot_history(history, path, title=None) -> Path:
    """Loss and accuracy per epoch, training against validation.

    Args:
        history: dict such as ``{"loss": [...], "accuracy": [...], "val_loss": [...],
            "val_accuracy": [...]}``, or an object with such a ``.history`` dict (the
            ``History`` returned by ``Sequential.fit``). ``"acc"`` is accepted for accuracy.
            Missing accuracy or validation keys just leave those curves (or the panel) out.
        path: where to write the PNG.
        title: figure title.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    from matplotlib.ticker import MaxNLocator

    h = _history_dict(history)
    acc_key = "accuracy" if ("accuracy" in h or "val_accuracy" in h) else "acc"
    panels = [(key, label, best) for key, label, best in
              [("loss", "Loss", np.nanargmin), (acc_key, "Accuracy", np.nanargmax)]
              if len(h.get(key, ())) or len(h.get("val_" + key, ()))]
    if not panels:
        raise InvalidArgumentError(f"history has no 'loss' or 'accuracy' curves (with or without 'val_'), "
                         f"keys are {sorted(h)}")
    fig = _new_figure((5.0 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label, best) in zip(axes, panels):
        for k, name, color in [(key, "train", "tab:blue"), ("val_" + key, "validation", "tab:orange")]:
            values = np.asarray(h.get(k, ()), dtype=np.float64)
            if values.size == 0:
                continue
            epochs = np.arange(1, values.size + 1)
            ax.plot(epochs, values, color=color, marker="o" if values.size <= 30 else None,
                    markersize=3, label=name)
            if name == "validation" and np.isfinite(values).any():
                i = best(values)
                ax.plot(epochs[i], values[i], "*", color="tab:red", markersize=11, zorder=3,
                        label=f"best val {values[i]:.4g} (epoch {epochs[i]})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path, tight=True)


def plot_scalar_curves(curves, path, xlabel, ylabel, title=None, logx=False, logy=False) -> Path:
    """Several named y-against-x curves on one axis, for experiment sweeps.

    Args:
        curves: dict ``name -> (x, y)`` with equal-length 1-D sequences.
        path: where to write the PNG.
        xlabel, ylabel: axis labels.
        title: axis title.
        logx, logy: logarithmic x or y axis (values must then be positive).

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise InvalidArgumentError("curves must be a non-empty dict of name -> (x, y)")
    fig = _new_figure((6.4, 4.2))
    ax = fig.subplots()
    for name, xy in curves.items():
        if len(xy) != 2:
            raise InvalidArgumentError(f"curves[{name!r}] must be a pair (x, y), received {len(xy)} items")
        x, y = (np.asarray(v, dtype=np.float64) for v in xy)
        if x.ndim != 1 or x.shape != y.shape:
            raise InvalidArgumentError(f"curves[{name!r}] needs 1-D x and y of equal length, "
                             f"received shapes {x.shape} and {y.shape}")
        for axis, v, on in (("x", x, logx), ("y", y, logy)):
            if on and np.any(v[np.isfinite(v)] <= 0):
                raise InvalidArgumentError(f"curves[{name!r}] has {axis} values <= 0, which a log {axis} axis cannot show")
        ax.plot(x, y, marker="o" if x.size <= 30 else None, markersize=3, label=str(name))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both" if (logx or logy) else "major", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, tight=True)


# ----------------------------------------------------------------------------- classification

def confusion_matrix(y_true, y_pred, n_classes=None) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true classes, columns predicted classes.

    Args:
        y_true: class ids of shape (N,), or one-hot/scores of shape (N, K) (argmax is taken).
        y_pred: same forms as ``y_true``.
        n_classes: size of the matrix; default is the largest id seen plus one.

    Returns:
        int64 array of shape (n_classes, n_classes).

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0])
        array([[1, 0],
               [1, 1]])
    """
    t, p = _paired_labels(y_true, y_pred)
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if n_classes is None:
        n_classes = seen
    elif int(n_classes) < seen:
        raise InvalidArgumentError(f"n_classes={n_classes} but the labels contain class id {seen - 1}")
    n = int(n_classes)
    # each (true, pred) pair indexes one cell of the flattened n x n matrix
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n).astype(np.int64)


def plot_confusion_matrix(y_true, y_pred, path, class_names=None, normalize=False) -> Path:
    """Confusion matrix as a heat map with the count (or row fraction) written in each cell.

    Args:
        y_true: true class ids (N,) or one-hot (N, K).
        y_pred: predicted class ids (N,) or scores (N, K).
        path: where to write the PNG.
        class_names: tick labels, one per class (also fixes the number of classes).
        normalize: show each row as fractions of that true class instead of counts.

    Cells are annotated when there are at most 30 classes.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    t, p = _paired_labels(y_true, y_pred)
    cm = confusion_matrix(t, p, n_classes=len(class_names) if class_names is not None else None)
    n = cm.shape[0]
    if n == 0:
        raise InvalidArgumentError("y_true and y_pred are empty")
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    names = [_class_name(k, class_names) for k in range(n)]
    side = min(max(4.5, 0.55 * n + 2.5), 16.0)
    fig = _new_figure((side + 0.8, side))
    ax = fig.subplots()
    vmax = 1 if normalize else max(int(cm.max()), 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    if n <= 30:
        fontsize = max(5, min(10, 150 // n))
        for i, j in np.ndindex(n, n):
            text = f"{shown[i, j]:.2f}" if normalize else str(cm[i, j])
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if shown[i, j] > vmax / 2 else "black")
    long_names = max(len(s) for s in names) > 3
    ax.set_xticks(range(n), names, rotation=45 if long_names else 0, ha="right" if long_names else "center",
                  fontsize=8 if n > 15 else 10)
    ax.set_yticks(range(n), names, fontsize=8 if n > 15 else 10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"Confusion matrix{' (row-normalized)' if normalize else ''} - "
                 f"accuracy {100 * accuracy:.2f}% of {cm.sum()}")
    return _save(fig, path, tight=True)


def plot_decision_boundary(predict_fn, X, y, path, title=None, resolution=200) -> Path:
    """Predicted class over the plane (filled contours) with the data points on top.

    Args:
        predict_fn: callable mapping an (M, 2) array to class ids (M,) or class scores (M, K),
            e.g. ``lambda P: model.predict(P).argmax(1)``.
        X: points of shape (N, 2).
        y: class ids of shape (N,).
        path: where to write the PNG.
        title: axis title; default reports the accuracy of ``predict_fn`` on ``X``.
        resolution: grid points along each axis.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    import matplotlib
    from matplotlib.lines import Line2D

    X = as_numpy(X)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise InvalidArgumentError(f"X must have shape (N, 2) with N > 0, received shape {X.shape}")
    y = _labels(y, "y")
    if len(y) != len(X):
        raise InvalidArgumentError(f"X and y must have the same length, received {len(X)} and {len(y)}")
    if int(resolution) < 2:
        raise InvalidArgumentError(f"resolution must be at least 2, received {resolution}")
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-6)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], int(resolution))
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], int(resolution))
    xx, yy = np.meshgrid(xs, ys)
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(dtype)
    Z = _labels(predict_fn(grid), "predict_fn output")
    if Z.shape != (grid.shape[0],):
        raise InvalidArgumentError(f"predict_fn must return one class per grid point, {grid.shape[0]} expected, "
                         f"received shape {Z.shape}")
    n = int(max(Z.max(), y.max())) + 1
    if n <= 10:
        colors = matplotlib.colormaps["tab10"].colors[:n]
    else:
        colors = [tuple(c) for c in matplotlib.colormaps["hsv"](np.linspace(0, 1, n, endpoint=False))]
    colors_arr = np.asarray(colors)
    fig = _new_figure((6.0, 5.2))
    ax = fig.subplots()
    ax.contourf(xx, yy, Z.reshape(xx.shape), levels=np.arange(n + 1) - 0.5, colors=colors, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=colors_arr[y], s=float(np.clip(3000 / len(X), 4, 30)),
               edgecolors="black", linewidths=0.3)
    if n <= 10:
        handles = [Line2D([], [], ls="", marker="o", color=colors[k], markeredgecolor="black", label=f"class {k}")
                   for k in range(n)]
        ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel("x\u2081")
    ax.set_ylabel("x\u2082")
    if title is None:
        accuracy = np.mean(_labels(predict_fn(X.astype(dtype)), "predict_fn output") == y)
        title = f"Decision boundary - accuracy {100 * accuracy:.1f}% on these {len(X)} points"
    ax.set_title(title)
    return _save(fig, path, tight=True)


# ----------------------------------------------------------------------------- images

def plot_image_grid(images, path, titles=None, ncols=10, cmap="gray") -> Path:
    """A grid of images, each scaled to its own range.

    Args:
        images: (N, H, W) or (N, 1, H, W) grayscale, (N, H, W, 3) or (N, 3, H, W) RGB.
        path: where to write the PNG.
        titles: optional sequence of N short titles.
        ncols: images per row.
        cmap: color map for grayscale images.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    x, rgb = _to_images(images)
    if len(x) == 0:
        raise InvalidArgumentError("images is empty")
    if titles is not None and len(titles) != len(x):
        raise InvalidArgumentError(f"titles must have one entry per image, received {len(titles)} for {len(x)} images")
    tiles = x if rgb else _per_tile_unit_range(x.astype(np.float64))
    return _save(_tile_figure(tiles, ncols, titles, cmap=cmap, vmin=0, vmax=1), path)


def plot_misclassified(X, y_true, y_pred, path, max_images=50, class_names=None, image_shape=None) -> Path:
    """The first misclassified images, each titled "pred P / true T".

    Args:
        X: images (N, H, W), (N, C, H, W), (N, H, W, 3) or flattened (N, H*W).
        y_true: true class ids (N,) or one-hot (N, K).
        y_pred: predicted class ids (N,) or scores (N, K).
        path: where to write the PNG.
        max_images: at most this many images are shown.
        class_names: names used in the titles instead of class ids.
        image_shape: shape of one image, (H, W) or (C, H, W), for flattened ``X``; default
            guesses a square (or 3-channel square) image.

    Returns:
        ``path`` as a ``pathlib.Path``. When every prediction is right, the PNG says so.
    """
    X = as_numpy(X)
    t, p = _paired_labels(y_true, y_pred)
    if len(X) != len(t):
        raise InvalidArgumentError(f"X and y_true must have the same length, received {len(X)} and {len(t)}")
    wrong = np.flatnonzero(t != p)
    if wrong.size == 0:
        fig = _new_figure((5.0, 1.6))
        fig.text(0.5, 0.5, f"No misclassified images\n({len(t)} of {len(t)} correct)",
                 ha="center", va="center", fontsize=13)
        return _save(fig, path)
    idx = wrong[:max(1, int(max_images))]
    images = X[idx]
    if image_shape is not None or images.ndim == 2:
        shape = tuple(image_shape) if image_shape is not None else _square_shape(X[0].size, "X")
        if math.prod(shape) != X[0].size:
            raise InvalidArgumentError(f"image_shape {shape} holds {math.prod(shape)} values but each row of X "
                             f"has {X[0].size} (X shape {X.shape})")
        images = images.reshape((len(idx),) + shape)
    x, rgb = _to_images(images, "X")
    pairs = [(_class_name(p[k], class_names, 13), _class_name(t[k], class_names, 13)) for k in idx]
    # one line fits a 1.1-inch tile up to ~19 characters; otherwise every title takes two
    sep = " / " if max(len(a) + len(b) for a, b in pairs) <= 6 else "\n"
    titles = [f"pred {pred}{sep}true {true}" for pred, true in pairs]
    tiles = x if rgb else _per_tile_unit_range(x.astype(np.float64))
    suptitle = f"Misclassified: {wrong.size} of {len(t)} ({100 * wrong.size / len(t):.2f}%), showing {len(idx)}"
    fig = _tile_figure(tiles, 10, titles, title_color="tab:red", suptitle=suptitle, vmin=0, vmax=1)
    return _save(fig, path)


def plot_dense_weights(W, path, image_shape=(28, 28), max_units=64) -> Path:
    """Each unit's incoming weights of a first Dense layer drawn as an image.

    Blue is negative, red positive, white zero; one color scale is shared by all tiles.

    Args:
        W: weights of shape (in_features, units), with ``in_features == H * W`` of ``image_shape``.
        path: where to write the PNG.
        image_shape: (H, W) of the input images.
        max_units: at most this many units (the first ones) are shown.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    W = as_numpy(W)
    shape = tuple(int(s) for s in image_shape)
    if W.ndim != 2:
        raise InvalidArgumentError(f"W must have shape (in_features, units), received shape {W.shape}")
    if len(shape) != 2 or shape[0] * shape[1] != W.shape[0]:
        raise InvalidArgumentError(f"image_shape must be (H, W) with H * W == in_features; received image_shape "
                         f"{image_shape} for W of shape {W.shape}")
    k = min(W.shape[1], max(1, int(max_units)))
    tiles = W[:, :k].T.reshape((k,) + shape).astype(np.float64)
    vmax = float(np.abs(tiles).max()) or 1.0
    fig = _tile_figure(tiles, math.ceil(math.sqrt(k)), suptitle=f"Dense weights: {k} of {W.shape[1]} units",
                       colorbar_label="weight", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    return _save(fig, path)


def plot_conv_filters(W, path, max_filters=64) -> Path:
    """One tile per convolution filter.

    Single-channel filters share a blue-white-red scale centered on 0; RGB filters (C == 3)
    are drawn in color with 0 at mid-gray; other channel counts show the mean over channels.

    Args:
        W: kernel of shape (filters, in_channels, kh, kw), the PyTorch layout.
        path: where to write the PNG.
        max_filters: at most this many filters (the first ones) are shown.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    W = as_numpy(W)
    if W.ndim != 4:
        raise InvalidArgumentError(f"W must have shape (filters, in_channels, kh, kw), received shape {W.shape}")
    f, c = W.shape[:2]
    k = min(f, max(1, int(max_filters)))
    w = W[:k].astype(np.float64)
    titles = [str(i) for i in range(k)]
    ncols = math.ceil(math.sqrt(k))
    suptitle = f"Conv filters: {k} of {f}, {W.shape[2]}x{W.shape[3]}"
    if c == 3:
        # per filter: 0 -> mid-gray, largest |weight| -> full channel intensity
        scale = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
        tiles = (0.5 + 0.5 * w / np.maximum(scale, 1e-12)).transpose(0, 2, 3, 1)
        fig = _tile_figure(tiles, ncols, titles, suptitle=f"{suptitle}, RGB")
    else:
        tiles = w.mean(axis=1)
        vmax = float(np.abs(tiles).max()) or 1.0
        how = "single channel" if c == 1 else f"mean over {c} channels"
        fig = _tile_figure(tiles, ncols, titles, suptitle=f"{suptitle}, {how}", colorbar_label="weight",
                           cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    return _save(fig, path)


def plot_feature_maps(maps_by_layer, path, max_channels=16) -> Path:
    """Activations of one image, one row per layer with up to ``max_channels`` channels.

    Args:
        maps_by_layer: list of ``(layer_name, array)`` (or a dict) with arrays of shape
            (C, H, W), (1, C, H, W) or (H, W) for a single image.
        path: where to write the PNG.
        max_channels: channels shown per layer (the first ones).

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    items = list(maps_by_layer.items() if isinstance(maps_by_layer, Mapping) else maps_by_layer)
    if not items:
        raise InvalidArgumentError("maps_by_layer is empty")
    rows = []
    for entry in items:
        if len(entry) != 2:
            raise InvalidArgumentError(f"maps_by_layer entries must be (layer_name, array) pairs, received {entry!r:.80}")
        name, a = entry
        a = as_numpy(a).astype(np.float64)
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        elif a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise InvalidArgumentError(f"feature maps of layer {name!r} must have shape (C, H, W) for one image, "
                             f"received shape {a.shape}")
        rows.append((str(name), a))
    import matplotlib

    ncols = min(max(1, int(max_channels)), max(a.shape[0] for _, a in rows))
    label_w, top_h, cell, gap = 1.6, 0.45, 0.85, 0.12
    width, height = label_w + ncols * cell + 0.1, len(rows) * (cell + gap) + top_h
    fig = _new_figure((width, height))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    for i, (name, a) in enumerate(rows):
        # each layer is one strip of channels, each channel scaled to its own range
        h, w = a.shape[1:]
        pad = max(1, round(0.06 * max(h, w)))
        strip = np.full((ncols, h, w), np.nan)
        shown = min(ncols, a.shape[0])
        strip[:shown] = _per_tile_unit_range(a[:shown])
        canvas = _mosaic(strip, ncols, pad, 0, np.nan)
        y0 = height - top_h - (i + 1) * (cell + gap) + gap / 2
        ax = fig.add_axes([label_w / width, y0 / height, ncols * cell / width, cell / height])
        ax.set_axis_off()
        ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest", aspect="equal")
        ax.set_anchor("W")
        count = f"{shown} of {a.shape[0]} ch" if a.shape[0] > shown else f"{a.shape[0]} ch"
        fig.text((label_w - 0.1) / width, (y0 + cell / 2) / height, f"{name}\n{count}, {h}x{w}",
                 ha="right", va="center", fontsize=9)
    fig.suptitle("Feature maps (each channel scaled to its own range)", y=1 - 0.08 / height, va="top")
    return _save(fig, path)


# ----------------------------------------------------------------------------- hyperparameters

_METRIC_NAMES = {"loss", "accuracy", "acc", "time", "seconds"}


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _numeric_params(runs, metric):
    """Keys holding a number in every run that has them, not metric-like, varying if any vary."""
    keys = dict.fromkeys(k for r in runs for k in r)
    params = [k for k in keys if k != metric and k not in _METRIC_NAMES
              and not str(k).startswith(("val_", "train_", "test_"))
              and all(_is_number(r[k]) for r in runs if k in r)]
    varying = [k for k in params if len({r[k] for r in runs if k in r}) > 1]
    return varying or params


def plot_hparam_scatter(results, path, metric="val_accuracy", params=None) -> Path:
    """Metric against each numeric hyperparameter, one panel per hyperparameter.

    The x axis is logarithmic when a hyperparameter's positive values span more than two
    decades; the best run is starred.

    Args:
        results: list of dicts, one per run, holding hyperparameter values and ``metric``.
        path: where to write the PNG.
        metric: key of the value on the y axis; runs without it are skipped.
        params: hyperparameter keys to plot; default is every key whose values are all numbers
            and vary between runs, except ``metric`` and metric-like keys (``loss``, ``accuracy``,
            ``time``, and anything starting with ``val_``, ``train_`` or ``test_``).

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    if isinstance(results, Mapping) or not all(isinstance(r, Mapping) for r in results):
        raise InvalidArgumentError("results must be a list of dicts, one per run")
    runs = [r for r in results if metric in r and _is_number(r[metric])]
    if not runs:
        raise InvalidArgumentError(f"no run in results has a numeric {metric!r}; keys of the first run: "
                         f"{sorted(results[0]) if results else []}")
    if params is None:
        params = _numeric_params(runs, metric)
    if not params:
        raise InvalidArgumentError(f"results have no numeric hyperparameters to plot against {metric!r}")
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = _new_figure((4.2 * ncols, 3.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(params):]:
        ax.set_axis_off()
    maximize = not any(word in metric for word in ("loss", "error", "time"))
    for ax, key in zip(axes, params):
        pts = np.array([(r[key], r[metric]) for r in runs if key in r and _is_number(r[key])], dtype=np.float64)
        if pts.size == 0:
            raise InvalidArgumentError(f"hyperparameter {key!r} has no numeric values in results")
        x, y = pts[:, 0], pts[:, 1]
        ax.scatter(x, y, s=25, alpha=0.75, edgecolors="black", linewidths=0.4)
        finite = np.isfinite(y)
        if finite.any():
            i = np.flatnonzero(finite)[np.argmax(y[finite]) if maximize else np.argmin(y[finite])]
            ax.plot(x[i], y[i], "*", color="tab:red", markersize=14, label=f"best {y[i]:.4g} at {x[i]:.3g}")
            ax.legend(fontsize=8)
        positive = x[x > 0]
        if positive.size and positive.size == x.size and positive.max() / positive.min() > 100:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{metric} over {len(runs)} runs")
    return _save(fig, path, tight=True)


__all__ = ["confusion_matrix", "plot_history", "plot_confusion_matrix", "plot_image_grid", "plot_misclassified",
           "plot_dense_weights", "plot_conv_filters", "plot_feature_maps", "plot_scalar_curves",
           "plot_decision_boundary", "plot_hparam_scatter"]
