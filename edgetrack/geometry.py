"""Box conventions and crops (numpy + OpenCV only).

Boxes are ``(x, y, w, h)`` in pixels, ``(x, y)`` the top-left corner, as in got10k and pysot; the centre is
``(x + (w - 1) / 2, y + (h - 1) / 2)`` (pixel centres at integer coordinates), and a centre goes back to a box
the same way, so a target that does not move is reported exactly at its input box. This is got10k's SiamFC
convention (``(w - 1) / 2`` both ways). pysot and the NanoTrack authors' tracker take the centre this way too
but report ``cx - w / 2``: their boxes sit 0.5 px up and left of their own input convention (and of the ground
truth), so edgetrack's are 0.5 px right/down of theirs on purpose; crops, and so the network's view, agree.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import cv2
import numpy as np

from .errors import BoxError, FrameError

#: Largest coordinate or size a box may have, in pixels (far beyond any frame; keeps crop sizes integral).
MAX_BOX_VALUE = 1e6
#: Smallest width and height a box may have, in pixels (far below a pixel; keeps the context size from
#: underflowing to zero). The tracker widens small targets to its minimum size after the first update anyway.
MIN_BOX_SIZE = 1e-3


def check_frame(frame: object, *, name: str = "frame") -> np.ndarray:
    """Return ``frame`` if it is a non-empty HxWx3 uint8 array, else raise FrameError saying what is wrong."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"{name} must be a numpy array (HxWx3 uint8), got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"{name} must have shape HxWx3, got {frame.shape}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise FrameError(f"{name} is empty or degenerate: shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise FrameError(f"{name} must be uint8 (0-255), got {frame.dtype}; convert with frame.astype(np.uint8)")
    return frame


def check_box(box: Sequence[float], image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate an ``(x, y, w, h)`` box: finite, positive size, overlapping the image when its shape is given."""
    try:
        raw = np.asarray(box)
        if raw.ndim != 1 or not _all_numbers(raw):  # nested lists would be flattened, strings pass as numbers
            raise TypeError("not numbers")
        arr = raw.astype(np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BoxError(f"box must be four numbers (x, y, w, h), got {box!r}") from exc
    if arr.size != 4:
        raise BoxError(f"box must be four numbers (x, y, w, h), got {arr.size} values")
    if not np.all(np.isfinite(arr)):
        raise BoxError(f"box has non-finite values: {arr.tolist()}")
    if np.any(np.abs(arr) > MAX_BOX_VALUE):
        raise BoxError(f"box {arr.tolist()} has values beyond {MAX_BOX_VALUE:g} pixels; boxes are (x, y, w, h) "
                       "in pixels of the frame")
    x, y, w, h = arr
    if w <= 0 or h <= 0:
        raise BoxError(f"box must have positive width and height, got w={w:g}, h={h:g}")
    if w < MIN_BOX_SIZE or h < MIN_BOX_SIZE:
        raise BoxError(f"box w={w:g}, h={h:g} is smaller than {MIN_BOX_SIZE:g} pixels; boxes are (x, y, w, h) in "
                       "pixels of the frame")
    if image_shape is not None:
        ih, iw = image_shape[:2]
        if x + w <= 0 or y + h <= 0 or x >= iw or y >= ih:
            raise BoxError(f"box {arr.tolist()} lies entirely outside the {iw}x{ih} image")
    return arr


def _all_numbers(arr: np.ndarray) -> bool:
    """Whether an array holds real numbers only (ints or floats; an object array of Python numbers too)."""
    if arr.dtype.kind in "iuf":
        return True
    return arr.dtype.kind == "O" and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                         for v in arr.reshape(-1))


def xywh_to_cxcywh(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x + (w - 1) / 2, y + (h - 1) / 2, w, h])


def cxcywh_to_xywh(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    return np.array([cx - (w - 1) / 2, cy - (h - 1) / 2, w, h])


def context_size(w: float, h: float, context_amount: float) -> float:
    """Side of the square region around a ``w x h`` target that maps to the exemplar crop (SiamFC/pysot)."""
    pad = context_amount * (w + h)
    return math.sqrt((w + pad) * (h + pad))


def padding_colour(image: np.ndarray, max_pixels: int = 1 << 18) -> tuple[float, float, float]:
    """Per-channel mean of ``image``, the colour pysot pads crops with.

    Exact (pysot's whole-image mean) up to ``max_pixels`` pixels (every frame of 640 px or less); a larger
    frame is averaged over every k-th row so the cost stays bounded (a row-strided view costs no copy).
    """
    ih, iw = image.shape[:2]
    step = max(1, math.ceil(ih * iw / max_pixels))
    return tuple(float(v) for v in cv2.mean(image[::step])[:3])


_PAD_LIMIT = 3  # padded windows up to this many output sides are padded then resized, larger ones warped


def crop_square(image: np.ndarray, center: tuple[float, float], side: float, out_size: int,
                fill: Sequence[float]) -> np.ndarray:
    """Crop a ``side x side`` square centred on ``center`` and resize it to ``out_size``; pad with ``fill``.

    Equivalent to pysot's ``get_subwindow`` (integer-aligned window ``floor(c - (side+1)/2 + 0.5)``, bilinear
    resize, constant padding). A window inside the image is cropped and resized. One that needs padding is
    padded then resized, exactly as pysot does, while the padded window is small (up to ``_PAD_LIMIT`` times
    ``out_size`` a side: about a quarter of the warp's one-thread cost); a larger one is cut as a single affine
    warp of the part of the image under the window, so large padded regions cost nothing extra. Either way only
    the window is read: the cost does not grow with the frame, even for a non-contiguous frame (e.g.
    ``rgb[..., ::-1]``), which OpenCV would otherwise copy whole.
    """
    side = max(1, int(round(side)))
    x0 = math.floor(center[0] - (side + 1) / 2 + 0.5)
    y0 = math.floor(center[1] - (side + 1) / 2 + 0.5)
    ih, iw = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= iw and y0 + side <= ih:
        # window inside the image: exactly pysot's crop-then-resize, and 3-5x faster than the warp
        return cv2.resize(image[y0:y0 + side, x0:x0 + side], (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    fill_value = tuple(float(v) for v in fill)
    if side <= _PAD_LIMIT * out_size:
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side, iw), min(y0 + side, ih)
        if ix0 < ix1 and iy0 < iy1:
            padded = cv2.copyMakeBorder(image[iy0:iy1, ix0:ix1], iy0 - y0, y0 + side - iy1, ix0 - x0,
                                        x0 + side - ix1, cv2.BORDER_CONSTANT, value=fill_value)
            return cv2.resize(padded, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    # Bilinear samples fall within [x0 - 1, x0 + side]: cut that (clipped to the image) and warp only it.
    rx0, ry0 = min(max(x0 - 1, 0), iw - 1), min(max(y0 - 1, 0), ih - 1)
    rx1, ry1 = max(min(x0 + side + 1, iw), rx0 + 1), max(min(y0 + side + 1, ih), ry0 + 1)
    scale = side / out_size
    # dst pixel u maps to src x0 + (u + 0.5) * scale - 0.5, as cv2.resize does after cropping.
    m = np.array([[scale, 0.0, x0 - rx0 + 0.5 * scale - 0.5], [0.0, scale, y0 - ry0 + 0.5 * scale - 0.5]])
    return cv2.warpAffine(image[ry0:ry1, rx0:rx1], m, (out_size, out_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=fill_value)


def clip_state(cx: float, cy: float, w: float, h: float, image_shape: tuple[int, ...],
               min_size: float = 10.0) -> tuple[float, float, float, float]:
    """Keep the tracked centre inside the image and the size within [min_size, image size] (pysot's clip)."""
    ih, iw = image_shape[:2]
    cx = min(max(cx, 0.0), float(iw))
    cy = min(max(cy, 0.0), float(ih))
    w = min(max(w, min_size), float(iw))
    h = min(max(h, min_size), float(ih))
    return cx, cy, w, h


def to_network_input(crops: np.ndarray, mean: Sequence[float], std: Sequence[float], swap_rb: bool) -> np.ndarray:
    """(N,H,W,3) uint8 crops -> (N,3,H,W) float32 normalised, channel order swapped if asked."""
    n, h, w = crops.shape[:3]
    out = np.empty((n, 3, h, w), dtype=np.float32)
    order = (2, 1, 0) if swap_rb else (0, 1, 2)
    # Split each crop into planes and convert plane by plane: about 2x faster than transpose-then-astype.
    for i in range(n):
        planes = cv2.split(crops[i])
        for c, src in enumerate(order):
            out[i, c] = planes[src]
    if any(m != 0.0 for m in mean):
        out -= np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    if any(s != 1.0 for s in std):
        out /= np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return out
