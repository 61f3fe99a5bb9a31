"""Training targets of the three head families, from a pair's search box (numpy only).

Boxes are ``(x1, y1, x2, y2)`` in search-crop pixels (see :mod:`edgetrack.training.augment`). Score-map cell
``(r, c)`` looks at crop point ``instance_size // 2 + grid_points`` (pysot's ``im_c = SEARCH_SIZE // 2``), the
same points the runtime decodes with (cell 0 at the spec's ``origin_for`` the training crop size). Labels: ``1``
positive, ``0`` negative, ``-1`` ignored.

- anchor-free (``nanotrack``; NanoTrack/SiamBAN ``PointTarget``): a point inside the ellipse centred on the
  target with semi-axes ``w/4, h/4`` is positive, a point outside the ellipse with semi-axes ``w/2, h/2`` is
  negative, points in between are ignored; the regression target is the ``(left, top, right, bottom)`` pixel
  distance from each point to the box edges;
- RPN (``siamrpn``; pysot ``AnchorTarget``): anchors with IoU ``> thr_high`` are positive, ``< thr_low``
  negative; deltas ``((tcx - cx) / w, (tcy - cy) / h, log(tw / w), log(th / h))``; ``reg_weight`` is
  ``1 / num_pos`` on positives;
- SiamFC (siamfc-pytorch logistic labels): 1 where the block (L1) distance to the target centre is at most
  ``r_pos / stride`` cells, else 0; balanced weights (positives and negatives each sum to 0.5).

pysot and NanoTrack keep at most ``pos_num`` positives and ``total_num - pos_num`` negatives, chosen at
random (``TargetConfig.sample``). Negative pairs get every cell negative and no regression; pairs without
ground truth (``has_gt=False``) get every cell ignored and zero weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetrack.errors import DataError
from edgetrack.runtime.postprocess import grid_points, make_anchors
from edgetrack.spec import TrackerSpec

FAMILY_KEYS = {
    "nanotrack": ("cls_label", "reg_target"),
    "siamrpn": ("cls_label", "reg_target", "reg_weight"),
    "siamfc": ("labels", "weights"),
}


@dataclass(frozen=True)
class TargetConfig:
    """Label rules. Defaults: pysot/NanoTrack ``TRAIN.POS_NUM 16``, ``TOTAL_NUM 64``, ``THR_HIGH 0.6``,
    ``THR_LOW 0.3``; siamfc-pytorch ``r_pos 16`` (pixels in the instance crop)."""

    pos_num: int = 16
    total_num: int = 64
    sample: bool = True
    thr_high: float = 0.6
    thr_low: float = 0.3
    r_pos: float = 16.0

    def __post_init__(self) -> None:
        if not 0 < self.pos_num <= self.total_num:
            raise DataError(f"TargetConfig needs 0 < pos_num <= total_num, got {self.pos_num}, {self.total_num}")
        if not 0.0 <= self.thr_low <= self.thr_high <= 1.0:
            raise DataError(f"TargetConfig needs 0 <= thr_low <= thr_high <= 1, got {self.thr_low}, "
                            f"{self.thr_high}")
        if self.r_pos < 0:
            raise DataError(f"TargetConfig.r_pos must be >= 0, got {self.r_pos}")


def training_score_size(spec: TrackerSpec, instance_size: int) -> int:
    """Score-map side for a search crop of ``instance_size``: the spec's ``score_size`` is for its own
    ``instance_size``, and a fully convolutional head gains one cell per ``stride`` pixels of crop."""
    diff = instance_size - spec.instance_size
    if diff % spec.stride:
        raise DataError(f"training crop {instance_size} and the spec's instance size {spec.instance_size} "
                        f"must differ by a multiple of the stride {spec.stride}")
    size = spec.score_size + diff // spec.stride
    if size < 1:
        raise DataError(f"a {instance_size}-pixel search crop gives no score map for {spec.name or spec.family}")
    return size


def score_points(score_size: int, stride: int, instance_size: int, origin: float | None = None) -> np.ndarray:
    """(2, S, S) x / y crop coordinates of the score-map cells (``origin``: cell 0's offset from the crop centre,
    :meth:`~edgetrack.spec.TrackerSpec.origin_for` the crop size; default pysot's)."""
    pts = grid_points(score_size, stride, origin) + instance_size // 2
    return pts.reshape(score_size, score_size, 2).transpose(2, 0, 1).copy()


def anchor_boxes(spec: TrackerSpec, score_size: int, instance_size: int) -> np.ndarray:
    """(4, K, S, S) anchors ``cx, cy, w, h`` in crop coordinates, ordered like the RPN head's channels."""
    flat = make_anchors(spec.with_(score_size=score_size, score_origin=spec.origin_for(instance_size)))
    k = spec.num_anchors
    anchors = flat.reshape(k, score_size, score_size, 4).transpose(3, 0, 1, 2).copy()
    anchors[:2] += instance_size // 2
    return anchors


def _keep(mask: np.ndarray, limit: int, cfg: TargetConfig, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with at most ``limit`` True entries left (a random subset) when sampling is on."""
    idx = np.flatnonzero(mask)
    if not cfg.sample or len(idx) <= limit:
        return mask
    out = np.zeros(mask.size, dtype=bool)
    out[rng.choice(idx, size=limit, replace=False)] = True
    return out.reshape(mask.shape)


def _target_box(bbox: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(bbox, dtype=np.float64).reshape(4))
    if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1):
        raise DataError(f"a positive pair with ground truth needs a finite box with x2 > x1, y2 > y1; got {bbox}")
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def anchor_free_targets(bbox, positive: bool, has_gt: bool, points: np.ndarray, cfg: TargetConfig,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``cls_label`` (S, S) int64 and ``reg_target`` (4, S, S) float32 (l, t, r, b pixel distances)."""
    size = points.shape[-1]
    cls = np.full((size, size), -1, dtype=np.int64)
    reg = np.zeros((4, size, size), dtype=np.float32)
    if has_gt and not positive:
        cls[:] = 0
    if not (has_gt and positive):
        return {"cls_label": cls, "reg_target": reg}
    tcx, tcy, tw, th = _target_box(bbox)
    x1, y1, x2, y2 = tcx - tw / 2, tcy - th / 2, tcx + tw / 2, tcy + th / 2
    px, py = points
    reg[:] = np.stack([px - x1, py - y1, x2 - px, y2 - py])
    dx, dy = tcx - px, tcy - py
    inner = (dx / (tw / 4)) ** 2 + (dy / (th / 4)) ** 2 < 1
    outer = (dx / (tw / 2)) ** 2 + (dy / (th / 2)) ** 2 > 1
    pos = _keep(inner, cfg.pos_num, cfg, rng)
    neg = _keep(outer, cfg.total_num - cfg.pos_num, cfg, rng)
    cls[neg] = 0
    cls[pos] = 1
    return {"cls_label": cls, "reg_target": reg}


def _iou(anchors: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    cx, cy, w, h = anchors
    tx1, ty1, tx2, ty2 = box
    ax1, ay1, ax2, ay2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    iw = np.maximum(0.0, np.minimum(ax2, tx2) - np.maximum(ax1, tx1))
    ih = np.maximum(0.0, np.minimum(ay2, ty2) - np.maximum(ay1, ty1))
    inter = iw * ih
    return inter / (w * h + (tx2 - tx1) * (ty2 - ty1) - inter)


def rpn_targets(bbox, positive: bool, has_gt: bool, anchors: np.ndarray, cfg: TargetConfig,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``cls_label`` (K, S, S) int64, ``reg_target`` (4, K, S, S) float32, ``reg_weight`` (K, S, S) float32."""
    shape = anchors.shape[1:]
    cls = np.full(shape, -1, dtype=np.int64)
    reg = np.zeros((4, *shape), dtype=np.float32)
    weight = np.zeros(shape, dtype=np.float32)
    if has_gt and not positive:
        cls[:] = 0
    if not (has_gt and positive):
        return {"cls_label": cls, "reg_target": reg, "reg_weight": weight}
    tcx, tcy, tw, th = _target_box(bbox)
    cx, cy, w, h = anchors
    reg[:] = np.stack([(tcx - cx) / w, (tcy - cy) / h, np.log(tw / w), np.log(th / h)])
    iou = _iou(anchors, (tcx - tw / 2, tcy - th / 2, tcx + tw / 2, tcy + th / 2))
    pos = _keep(iou > cfg.thr_high, cfg.pos_num, cfg, rng)
    neg = _keep(iou < cfg.thr_low, cfg.total_num - cfg.pos_num, cfg, rng)
    cls[pos] = 1
    cls[neg] = 0
    weight[pos] = 1.0 / (int(pos.sum()) + 1e-6)
    return {"cls_label": cls, "reg_target": reg, "reg_weight": weight}


def siamfc_targets(bbox, positive: bool, has_gt: bool, points: np.ndarray, stride: int,
                   cfg: TargetConfig) -> dict[str, np.ndarray]:
    """``labels`` (1, R, R) float32 in {0, 1} and balanced ``weights`` (1, R, R) float32 summing to 1."""
    size = points.shape[-1]
    labels = np.zeros((1, size, size), dtype=np.float32)
    weights = np.zeros((1, size, size), dtype=np.float32)
    if has_gt and not positive:
        weights[:] = 1.0 / labels.size
    if not (has_gt and positive):
        return {"labels": labels, "weights": weights}
    tcx, tcy, _, _ = _target_box(bbox)
    dist = (np.abs(points[0] - tcx) + np.abs(points[1] - tcy)) / stride
    pos = dist <= cfg.r_pos / stride
    labels[0][pos] = 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    share = 0.5 if n_pos and n_neg else 1.0
    if n_pos:
        weights[0][pos] = share / n_pos
    if n_neg:
        weights[0][~pos] = share / n_neg
    return {"labels": labels, "weights": weights}


class TargetMaker:
    """Targets for one tracker spec and training crop size: ``maker(bbox, positive, has_gt, rng)``.

    Output keys per family: ``FAMILY_KEYS[spec.family]``; shapes in :attr:`shapes`.
    """

    def __init__(self, spec: TrackerSpec, instance_size: int = 255, config: TargetConfig | None = None) -> None:
        if spec.family not in FAMILY_KEYS:
            raise DataError(f"no training targets for family {spec.family!r}")
        self.family = spec.family
        self.stride = spec.stride
        self.config = config or TargetConfig()
        self.score_size = training_score_size(spec, instance_size)
        self.points = score_points(self.score_size, spec.stride, instance_size, spec.origin_for(instance_size))
        self.anchors = anchor_boxes(spec, self.score_size, instance_size) if spec.family == "siamrpn" else None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        s = self.score_size
        if self.family == "siamrpn":
            k = self.anchors.shape[1]
            return {"cls_label": (k, s, s), "reg_target": (4, k, s, s), "reg_weight": (k, s, s)}
        if self.family == "siamfc":
            return {"labels": (1, s, s), "weights": (1, s, s)}
        return {"cls_label": (s, s), "reg_target": (4, s, s)}

    def __call__(self, bbox, positive: bool, has_gt: bool = True,
                 rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        rng = rng if rng is not None else np.random.default_rng(0)
        if self.family == "siamrpn":
            return rpn_targets(bbox, positive, has_gt, self.anchors, self.config, rng)
        if self.family == "siamfc":
            return siamfc_targets(bbox, positive, has_gt, self.points, self.stride, self.config)
        return anchor_free_targets(bbox, positive, has_gt, self.points, self.config, rng)
