"""Buffers the engine reuses from step to step.

A step's large temporaries come from buffers kept between steps: a fresh array of several MB is
fresh pages from the kernel, and their page faults were measured to cost as much as the work
done in them (a 3x3, 32 -> 64 channel Winograd convolution at batch 64: 9.2 ms forward with new
arrays, 5.5 ms with reused ones; batch normalization of a 28x28x32 map likewise).

- ``scratch(name, ...)``: a temporary, valid until the next request of the same name in the same
  thread. Per thread (inference and split batches run layers in several threads), freed with the
  thread, and shared by all the layers of a thread, which run one after the other.
- ``kept(layer, name, ...)``: the layer's own buffer for what a training forward keeps for its
  backward. Like ``layer._cache``, it holds the latest training forward's (a layer trains in one
  thread at a time: split batches run copies of it).

Arrays a layer returns are never taken from here. ``release`` frees them (``fit`` does when it ends).
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

_ARENA = threading.local()  # per thread: {(name, dtype): 1-D buffer grown to the largest request}
_KEPT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # layer -> {name: buffer}


def scratch(name, shape, dtype):
    """A buffer of ``shape`` for temporary use, reused by every later call with the same name in this
    thread."""
    bufs = getattr(_ARENA, "bufs", None)
    if bufs is None:
        bufs = _ARENA.bufs = {}
    key = (name, np.dtype(dtype))
    size = int(np.prod(shape))
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = bufs[key] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def kept(layer, name, shape, dtype):
    """``layer``'s own buffer ``name`` of ``shape``, for what its training forward keeps for backward."""
    bufs = _KEPT.get(layer)
    if bufs is None:
        bufs = _KEPT[layer] = {}
    buf = bufs.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = bufs[name] = np.empty(shape, dtype)
    return buf


def release(layers=()) -> None:
    """Frees this thread's scratch buffers and the kept buffers of ``layers`` (all layers' when
    empty). Other threads' scratch buffers are freed when those threads end."""
    _ARENA.__dict__.clear()
    if layers:
        for layer in layers:
            _KEPT.pop(layer, None)
    else:
        _KEPT.clear()
