"""Crop geometry and photometric augmentation for Siamese training pairs (numpy + OpenCV only).

Crops are cut with :func:`edgetrack.geometry.crop_square`, the tracker's own crop, so training crops and
tracking crops match pixel for pixel. Boxes in a crop are ``(x1, y1, x2, y2)`` floats in crop pixel
coordinates: pixel ``u`` covers ``[u - 0.5, u + 0.5]``, so ``(x1 + x2) / 2`` is the target centre in the
same coordinates as the score-map points (``instance_size // 2 + grid_points``) and ``x2 - x1`` is the
target width in crop pixels (pysot's ``center2corner`` convention).

Every random number comes from the ``numpy.random.Generator`` passed in, and each step draws the same
numbers whatever its probability is, so switching one augmentation on or off leaves the others unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edgetrack.errors import DataError
from edgetrack.geometry import crop_square

COLOR_MODES = ("pca", "hsv")

# PCA colour offsets of pysot/NanoTrack's Augmentation (``rgbVar``): offset = RGB_VAR @ N(0, I_3), RGB order.
RGB_VAR = np.array([[-0.55919361, 0.98062831, -0.41940627],
                    [1.72091413, 0.19879334, -1.82968581],
                    [4.64467907, 4.73710203, 4.88324118]], dtype=np.float64)
# pysot's motion-blur kernels: odd sizes 5..45, a cross of one row and one column mixed by a random weight.
BLUR_SIZES = np.arange(5, 46, 2)
# HSV jitter (the alternative colour mode): hue shift in OpenCV units (0..180), saturation / value factors.
HSV_HUE = 8.0
HSV_SAT = 0.3
HSV_VAL = 0.3


@dataclass(frozen=True)
class BranchAug:
    """Augmentation of one branch (template or search).

    ``shift``: the crop centre moves by up to ``shift`` crop pixels on each axis (uniform), so the target
    lands off-centre by the same amount; ``scale``: the crop side is multiplied by ``1 + U(-scale, scale)``;
    ``blur``, ``flip``, ``color``: probabilities of motion blur, horizontal flip and a colour change.
    """

    shift: float = 0.0
    scale: float = 0.0
    blur: float = 0.0
    flip: float = 0.0
    color: float = 0.0

    def __post_init__(self) -> None:
        if self.shift < 0 or not 0 <= self.scale < 1:
            raise DataError(f"augmentation shift must be >= 0 and scale in [0, 1), got {self.shift}, {self.scale}")
        for name in ("blur", "flip", "color"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DataError(f"augmentation probability {name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class CropWindow:
    """Where a crop comes from: ``crop_square(frame, center, side, out_size, fill)``."""

    center: tuple[float, float]
    side: float
    out_size: int

    def source_window(self) -> tuple[int, int, float]:
        """``(x0, y0, scale)``: crop pixel ``u`` samples frame pixel ``x0 + (u + 0.5) * scale - 0.5``.

        Mirrors the integer alignment of :func:`edgetrack.geometry.crop_square` (pysot's ``get_subwindow``).
        """
        side = max(1, int(round(self.side)))
        x0 = math.floor(self.center[0] - (side + 1) / 2 + 0.5)
        y0 = math.floor(self.center[1] - (side + 1) / 2 + 0.5)
        return x0, y0, side / self.out_size

    def map_box(self, cxcywh: np.ndarray) -> np.ndarray:
        """A frame box ``(cx, cy, w, h)`` (pixel-index centre) as ``(x1, y1, x2, y2)`` in crop pixels."""
        x0, y0, s = self.source_window()
        cx = (cxcywh[0] - x0 + 0.5) / s - 0.5
        cy = (cxcywh[1] - y0 + 0.5) / s - 0.5
        w, h = cxcywh[2] / s, cxcywh[3] / s
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


def plan_window(center: tuple[float, float], base_side: float, out_size: int, aug: BranchAug,
                rng: np.random.Generator) -> CropWindow:
    """Jitter a crop of ``base_side`` frame pixels around ``center``: scale first, then shift (as pysot).

    The shift is drawn in crop pixels of the unscaled crop (pysot's ``SHIFT``), i.e. ``base_side / out_size``
    frame pixels per unit.
    """
    factor = 1.0 + float(rng.uniform(-1.0, 1.0)) * aug.scale
    sx, sy = (float(v) for v in rng.uniform(-1.0, 1.0, size=2) * aug.shift)
    per_px = base_side / out_size
    return CropWindow((center[0] + sx * per_px, center[1] + sy * per_px), base_side * factor, out_size)


def random_box(shape: tuple[int, ...], rel: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A random ``(cx, cy, w, h)`` inside an image of ``shape``: side ``U(rel) * short side``, aspect 1:2..2:1."""
    h_img, w_img = shape[:2]
    side = float(rng.uniform(rel[0], rel[1])) * min(h_img, w_img)
    root = math.sqrt(math.exp(float(rng.uniform(math.log(0.5), math.log(2.0)))))
    w, h = min(max(side * root, 2.0), w_img), min(max(side / root, 2.0), h_img)
    u = rng.random(2)
    cx = (w - 1) / 2 + float(u[0]) * (w_img - w)
    cy = (h - 1) / 2 + float(u[1]) * (h_img - h)
    return np.array([cx, cy, w, h])


def cut(frame: np.ndarray, window: CropWindow, fill: tuple[float, float, float] | None = None) -> np.ndarray:
    """The crop for ``window``, padded with ``fill`` (default: the frame's mean colour, as the tracker does)."""
    if fill is None:
        fill = tuple(cv2.mean(frame)[:3])
    return crop_square(frame, window.center, window.side, window.out_size, fill)


def to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def pca_color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """pysot's colour augmentation: subtract a random offset along the RGB principal components."""
    offset = (RGB_VAR @ rng.standard_normal(3))[::-1]  # RGB -> BGR
    return cv2.subtract(image, (*offset.tolist(), 0.0))  # rounds and saturates to uint8


def hsv_color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hue shift and saturation / value scaling (uniform in ``±HSV_HUE``, ``1 ± HSV_SAT``, ``1 ± HSV_VAL``)."""
    hue, sat, val = rng.uniform(-1.0, 1.0, size=3)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = np.mod(hsv[..., 0] + hue * HSV_HUE, 180.0)
    hsv[..., 1] *= 1.0 + sat * HSV_SAT
    hsv[..., 2] *= 1.0 + val * HSV_VAL
    hsv = np.clip(np.rint(hsv), 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """pysot's blur: a ``k x k`` kernel (k odd, 5..45) with weight ``wx / k`` on the centre column and
    ``(1 - wx) / k`` on the centre row, applied as its two box filters (within 1 grey level of ``filter2D``
    with the full kernel, and 30x faster for large ``k``)."""
    size = int(rng.choice(BLUR_SIZES))
    wx = float(rng.random())
    rows, cols = cv2.blur(image, (size, 1)), cv2.blur(image, (1, size))
    return cv2.addWeighted(rows, 1.0 - wx, cols, wx, 0.0)


def flip_box(box: np.ndarray, out_size: int) -> np.ndarray:
    """Mirror an ``(x1, y1, x2, y2)`` crop box for a horizontally flipped ``out_size`` crop."""
    return np.array([out_size - 1 - box[2], box[1], out_size - 1 - box[0], box[3]], dtype=box.dtype)


def photometric(image: np.ndarray, aug: BranchAug, rng: np.random.Generator, color_mode: str = "pca"
                ) -> tuple[np.ndarray, bool]:
    """Colour, then blur, then the flip decision (pysot's order); returns ``(image, flipped)``.

    Random numbers are drawn whether or not a step fires, so the stream does not depend on the probabilities.
    """
    if color_mode not in COLOR_MODES:
        raise DataError(f"unknown colour mode {color_mode!r}; choose from {COLOR_MODES}")
    do_color, do_blur, do_flip = (rng.random(3) < (aug.color, aug.blur, aug.flip)).tolist()
    color_rng, blur_rng = rng.spawn(2)
    if do_color:
        image = pca_color(image, color_rng) if color_mode == "pca" else hsv_color(image, color_rng)
    if do_blur:
        image = motion_blur(image, blur_rng)
    if do_flip:
        image = np.ascontiguousarray(image[:, ::-1])
    return image, bool(do_flip)
