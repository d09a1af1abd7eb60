"""Reading the inputs of ``scratchnn predict``: PNG/JPEG images and ``.npy`` arrays, checked against a model.

An image becomes one sample: converted to grey, scaled to [0, 1], and of exactly the model's size
(another size is refused unless ``resize``). An ``.npy`` array holds one sample of the model's input
shape or a batch of them. Every problem is an ``InvalidArgumentError`` naming the file.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import InvalidArgumentError
from .saving import NPZ_READ_ERRORS

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def read_image(path, size=None, resize=False) -> np.ndarray:
    """A grey image as float32 ``(H, W)`` in [0, 1]; ``size`` = ``(H, W)`` it must have (or be resized to)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            grey = im.convert("L")  # colour, palette and alpha images -> luminance
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InvalidArgumentError(f"{path}: not a readable image ({' '.join(str(e).split()) or type(e).__name__})") \
            from None
    if size is not None and grey.size != (size[1], size[0]):
        w, h = grey.size
        if not resize:
            raise InvalidArgumentError(f"{path}: image is {w}x{h} pixels, the model takes {size[1]}x{size[0]}; "
                                       "pass --resize to scale it")
        grey = grey.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(grey, dtype=np.float32) / 255.0


def light_background(img) -> bool:
    """True when the border of a grey image is mostly light (dark ink on paper, unlike MNIST)."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return float(np.median(border)) > 0.5


def read_array(path, want, pixels=False) -> np.ndarray:
    """A ``.npy`` array as a float32 batch of samples of shape ``want``. ``pixels``: the model takes images
    scaled to [0, 1], so uint8 and other integer arrays of 0-255 are divided by 255, and floats outside
    [0, 1] are refused (they would give confident nonsense)."""
    try:
        a = np.load(path, allow_pickle=False)
    except NPZ_READ_ERRORS as e:
        raise InvalidArgumentError(f"{path}: not a readable .npy array ({' '.join(str(e).split())})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{path}: expected a numeric array, found {getattr(a, 'dtype', type(a))}")
    if a.size == 0:
        raise InvalidArgumentError(f"{path}: holds no samples (shape {a.shape})")
    if a.dtype.kind in "biu":
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if pixels and not (0 <= lo and hi <= 255):
            raise InvalidArgumentError(f"{path}: integer values from {lo} to {hi}; image pixels are 0-255")
        a = a.astype(np.float32) / 255.0 if pixels else a.astype(np.float32)
    else:
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise InvalidArgumentError(f"{path}: holds NaN or infinite values")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if pixels and (lo < -1e-3 or hi > 1 + 1e-3):
            raise InvalidArgumentError(f"{path}: float values from {lo:g} to {hi:g}, but the model takes pixels "
                                       "scaled to [0, 1]: divide them by 255 (or save the array as uint8)")
    channels_first = len(want) == 3 and want[0] == 1
    if a.shape == want or (channels_first and a.shape == want[1:]):
        return a.reshape((1, *want))
    if a.shape[1:] == want or (channels_first and a.shape[1:] == want[1:]):
        return a.reshape((len(a), *want)) if len(a) else a
    shapes = f"{want} or a batch (N, {', '.join(map(str, want))})"
    if channels_first:
        shapes += f", or {want[1:]} / (N, {want[1]}, {want[2]}) without the channel axis"
    raise InvalidArgumentError(f"{path}: array of shape {a.shape} does not fit the model's input: expected {shapes}")


def read_input(path, want, invert=False, resize=False) -> tuple[np.ndarray, str | None]:
    """``(batch, note)`` for one file given to ``predict``; ``note`` suggests ``--invert`` when it looks needed."""
    want = tuple(want)
    if os.path.isdir(path):
        raise InvalidArgumentError(f"{path}: is a directory, not an image or .npy file")
    if not os.path.exists(path):
        raise InvalidArgumentError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    note = None
    if ext == ".npy":
        batch = read_array(path, want, pixels=len(want) == 3)
    elif ext in IMAGE_TYPES:
        if len(want) != 3 or want[0] != 1:
            raise InvalidArgumentError(f"{path}: the model takes inputs of shape {want}, not grey images; "
                                       "give a .npy array")
        img = read_image(path, want[1:], resize)
        if not invert and light_background(img):
            note = f"{path} has a light background; the model learned light digits on dark: try --invert"
        batch = img.reshape((1, *want))
    else:
        raise InvalidArgumentError(f"{path}: unsupported file type {ext or '(none)'!r}; use .png (or another "
                                   "image type) or .npy")
    return (1.0 - batch if invert else batch), note
