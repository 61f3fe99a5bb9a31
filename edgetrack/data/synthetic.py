"""Procedural tracking sequences: a textured target moving over a textured background.

``make_sequence(seed)`` returns ``(frames, gt)``: a list of BGR uint8 HxWx3 frames and an (N, 4) float64
array of ``x,y,w,h`` boxes (0-based pixels, NaN where the target is fully hidden or out of view).
The same arguments always give the same frames. Events that can be switched on:

- ``"scale"``: the target grows and shrinks (up to about 1.8x either way);
- ``"occlusion"``: a textured bar passes in front of the target (rows are NaN while it is fully covered);
- ``"out_of_view"``: the target leaves the frame and comes back (NaN while it is fully outside);
- ``"shake"``: camera jitter moves background and target together;
- ``"blur"``: motion blur on a stretch of frames.

``write_dataset(root, n_sequences, seed)`` writes such sequences in DTB70 layout
(``<root>/<seq>/img/0001.jpg``, ``groundtruth_rect.txt``) with DTB70-style attribute flags in ``<root>/att``.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .attributes import DTB70_CODES
from .fileio import atomic_write_bytes, atomic_write_text
from .gtfile import format_boxes
from .sequence import Sequence

EVENTS: tuple[str, ...] = ("scale", "occlusion", "out_of_view", "shake", "blur")
_EVENT_ATTRIBUTE = {"scale": "SV", "occlusion": "OCC", "out_of_view": "OV", "shake": "FCM", "blur": "MB"}
_MARGIN = 24  # background border that camera shake can reveal


def _texture(rng: np.random.Generator, h: int, w: int, contrast: float = 1.0) -> np.ndarray:
    """Multi-octave colour noise plus a few shapes: cheap, structured, trackable."""
    base = rng.uniform(40, 215, size=3)
    img = np.zeros((h, w, 3), np.float32) + base
    for cells, amp in ((3, 60.0), (8, 35.0), (24, 18.0)):
        small = rng.normal(0, amp * contrast, size=(cells, cells, 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(max(2, (h * w) // 4000)):
        color = [float(c) for c in rng.uniform(0, 255, 3)]
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, center, int(rng.integers(2, max(3, min(h, w) // 6))), color, -1)
        else:
            d = (int(rng.integers(2, max(3, w // 5))), int(rng.integers(2, max(3, h // 5))))
            cv2.rectangle(img, center, (center[0] + d[0], center[1] + d[1]), color, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _window(rng: np.random.Generator, n: int, length: float) -> tuple[int, int]:
    """A frame interval of about ``length * n`` frames that never touches the first quarter."""
    span = max(2, int(round(length * n)))
    lo = max(1, n // 4)
    start = int(rng.integers(lo, max(lo + 1, n - span)))
    return start, min(n - 1, start + span)


def _bump(n: int, window: tuple[int, int]) -> np.ndarray:
    """0 outside ``window``, a half sine rising to 1 inside it."""
    t = np.arange(n, dtype=np.float64)
    a, b = window
    out = np.sin(np.pi * (t - a) / max(1, b - a))
    out[(t < a) | (t > b)] = 0.0
    return np.clip(out, 0.0, 1.0)


def _trajectory(rng, n, size, events):
    """Per-frame target centre (cx, cy), width, height and camera offset, all float."""
    w_img, h_img = size
    t = np.arange(n, dtype=np.float64)
    w0 = rng.uniform(0.12, 0.2) * w_img
    h0 = w0 * rng.uniform(0.6, 1.5)
    scale = np.ones(n)
    if "scale" in events:
        scale = np.exp(np.log(rng.uniform(1.4, 1.8)) * np.sin(2 * np.pi * t / max(n, 2) + rng.uniform(0, 2 * np.pi)))
        scale /= scale[0]
    w, h = w0 * scale, h0 * scale
    cx, cy = np.full(n, w_img / 2.0), np.full(n, h_img / 2.0)
    for arr, extent in ((cx, w_img), (cy, h_img)):
        for period in (rng.uniform(0.6, 1.2) * n, rng.uniform(0.2, 0.4) * n):
            arr += rng.uniform(0.08, 0.16) * extent * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        arr -= arr[0] - rng.uniform(0.35, 0.65) * extent
    if "out_of_view" in events:
        win = _window(rng, n, 0.3)
        side = rng.choice([-1.0, 1.0])
        cx += side * _bump(n, win) * 1.6 * (w_img / 2.0 + w.max())
    cam = np.zeros((n, 2))
    if "shake" in events:
        cam = np.clip(rng.normal(0, 5.0, size=(n, 2)), -_MARGIN + 1, _MARGIN - 1)
        cam[0] = 0.0
    return cx + cam[:, 0], cy + cam[:, 1], w, h, cam


def _paste(frame: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Copy ``sprite`` onto ``frame`` with its top-left corner at (x, y), clipped to the frame."""
    h, w = sprite.shape[:2]
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = sprite[y0 - y : y1 - y, x0 - x : x1 - x]


def _visible_fraction(box: tuple[int, int, int, int], size, occluder: tuple[int, int, int, int] | None) -> float:
    x, y, w, h = box
    mask = np.zeros((h, w), bool)
    xs0, ys0, xs1, ys1 = max(0, -x), max(0, -y), min(w, size[0] - x), min(h, size[1] - y)
    if xs1 > xs0 and ys1 > ys0:
        mask[ys0:ys1, xs0:xs1] = True
    if occluder is not None:
        ox, oy, ow, oh = occluder
        mask[max(0, oy - y) : max(0, oy + oh - y), max(0, ox - x) : max(0, ox + ow - x)] = False
    return float(mask.mean())


def _occluder_track(rng, n, cx, cy, h, size):
    """Per-frame occluder rectangle (x, y, w, h) or None; it crosses the target mid-window."""
    win = _window(rng, n, 0.25)
    a, b = win
    ow = int(rng.uniform(0.15, 0.25) * size[0])
    oh = int(max(h[a:b + 1].max() * 1.6, 0.3 * size[1]))
    mid = (a + b) / 2.0
    speed = (size[0] * 0.9) / max(1, b - a)
    rects = []
    for i in range(n):
        if not a <= i <= b:
            rects.append(None)
            continue
        ox = int(cx[int(mid)] - ow / 2 + (i - mid) * speed)
        oy = int(cy[int(mid)] - oh / 2)
        rects.append((ox, oy, ow, oh))
    return rects


def _blur(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(5, 12))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(frame, -1, kernel)


def make_sequence(
    seed: int,
    n_frames: int = 60,
    size: tuple[int, int] = (320, 240),
    events: tuple[str, ...] | list[str] = EVENTS,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Render one sequence: ``(frames, gt)`` with frames BGR uint8 of ``size = (width, height)``.

    ``gt`` is (n_frames, 4) float64 ``x,y,w,h`` of the target's full extent (it may reach past the
    image border); a row is NaN when less than 5% of the target is visible. Frame 0 always shows
    the whole target unoccluded.
    """
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown events {sorted(unknown)}; choose from {EVENTS}")
    if n_frames < 2:
        raise ValueError("n_frames must be at least 2")
    rng = np.random.default_rng(seed)
    w_img, h_img = int(size[0]), int(size[1])
    background = _texture(rng, h_img + 2 * _MARGIN, w_img + 2 * _MARGIN)
    sprite = _texture(rng, 64, 64, contrast=1.6)
    cv2.rectangle(sprite, (0, 0), (63, 63), [float(c) for c in rng.uniform(0, 255, 3)], 3)
    cx, cy, w, h, cam = _trajectory(rng, n_frames, (w_img, h_img), events)
    occ = _occluder_track(rng, n_frames, cx, cy, h, (w_img, h_img)) if "occlusion" in events else [None] * n_frames
    occ_sprite = _texture(rng, 16, 16)
    blur_win = _window(rng, n_frames, 0.2) if "blur" in events else (-1, -2)
    frames, gt = [], np.empty((n_frames, 4))
    for i in range(n_frames):
        ox, oy = int(round(_MARGIN + cam[i, 0])), int(round(_MARGIN + cam[i, 1]))
        frame = background[oy : oy + h_img, ox : ox + w_img].copy()
        bw, bh = max(4, int(round(w[i]))), max(4, int(round(h[i])))
        bx, by = int(round(cx[i] - bw / 2)), int(round(cy[i] - bh / 2))
        _paste(frame, cv2.resize(sprite, (bw, bh), interpolation=cv2.INTER_LINEAR), bx, by)
        if occ[i] is not None:
            _paste(frame, cv2.resize(occ_sprite, occ[i][2:], interpolation=cv2.INTER_LINEAR), *occ[i][:2])
        if blur_win[0] <= i <= blur_win[1]:
            frame = _blur(frame, rng)
        visible = _visible_fraction((bx, by, bw, bh), (w_img, h_img), occ[i])
        gt[i] = (bx, by, bw, bh) if visible >= 0.05 else np.nan
        frames.append(frame)
    return frames, gt


def events_for(seed: int, index: int) -> tuple[str, ...]:
    """The event set ``write_dataset`` gives sequence ``index``: a deterministic mix, never empty."""
    rng = np.random.default_rng((seed, index, 7))
    picked = tuple(e for e in EVENTS if rng.random() < 0.5)
    return picked or (EVENTS[int(rng.integers(len(EVENTS)))],)


def attribute_flags(events: tuple[str, ...] | list[str]) -> dict[str, bool]:
    """DTB70 attribute flags that a synthetic sequence with ``events`` has."""
    on = {_EVENT_ATTRIBUTE[e] for e in events}
    return {code: code in on for code in DTB70_CODES}


def synthetic_sequence(
    seed: int, n_frames: int = 60, size: tuple[int, int] = (320, 240), events=EVENTS, name: str | None = None
) -> Sequence:
    """:func:`make_sequence` wrapped as an in-memory :class:`Sequence` (with attribute flags)."""
    frames, gt = make_sequence(seed, n_frames, size, events)
    return Sequence.from_arrays(name or f"synth_{seed}", frames, gt, attributes=attribute_flags(events))


def _complete(seq_dir: Path, n_frames: int) -> bool:
    gt = seq_dir / "groundtruth_rect.txt"
    if not gt.is_file():
        return False
    rows = len([ln for ln in gt.read_text().splitlines() if ln.strip()])
    return rows == n_frames and len(list((seq_dir / "img").glob("*.jpg"))) == n_frames


def write_dataset(
    root: str | os.PathLike,
    n_sequences: int = 8,
    seed: int = 0,
    n_frames: int = 60,
    size: tuple[int, int] = (320, 240),
    events: tuple[str, ...] | None = None,
    jpeg_quality: int = 90,
) -> Path:
    """Write ``n_sequences`` sequences ``synth_000 ...`` in DTB70 layout under ``root``; return ``root``.

    With ``events=None`` each sequence gets its own mix (:func:`events_for`). Sequences already written
    with the same length are kept, so an interrupted call can simply be repeated. Frames are JPEG.
    """
    root = Path(root)
    for i in range(n_sequences):
        name = f"synth_{i:03d}"
        seq_events = tuple(events) if events is not None else events_for(seed, i)
        seq_dir = root / name
        flags = attribute_flags(seq_events)
        atomic_write_text(root / "att" / f"{name}.txt", ",".join(str(int(flags[c])) for c in DTB70_CODES) + "\n")
        if _complete(seq_dir, n_frames):
            continue
        for stale in (seq_dir / "img").glob("*.jpg"):
            stale.unlink()
        frames, gt = make_sequence(seed * 1000 + i, n_frames, size, seq_events)
        for k, frame in enumerate(frames, start=1):
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for {name} frame {k}")
            atomic_write_bytes(seq_dir / "img" / f"{k:04d}.jpg", buf.tobytes())
        atomic_write_text(seq_dir / "groundtruth_rect.txt", format_boxes(gt, "%.0f").replace("nan", "NaN"))
    return root
