"""One-pass evaluation (OPE) metrics, computed exactly as the got10k toolkit does.

- IoU of ``x,y,w,h`` boxes: intersection / (union + float eps), clipped to [0, 1]; NaN boxes give NaN.
- Centre ``x + (w - 1) / 2``; centre error is the Euclidean distance in pixels.
- Success curve: fraction of frames with IoU **>** t, t in ``linspace(0, 1, 21)``; AUC = its mean;
  success rate = its value at t = 0.5.
- Precision curve: fraction of frames with centre error **<=** t, t = 0..50 px; precision = value at 20 px.
- Normalized precision (LaSOT/TrackingNet): centre error divided by the ground-truth width and height,
  fraction ``<=`` t for t in ``linspace(0, 0.5, 51)``; score = mean of that curve.
- The first frame's prediction is replaced by the ground truth. Frames with NaN ground truth count as
  failures (NaN compares false), unless ``EvalOptions.exclude_absent`` drops them (and frames the dataset
  marks absent) before scoring.
- Overall and per-attribute curves are the mean of the per-sequence curves; scores come from those mean
  curves (AUC = mean of the mean success curve, precision = mean precision curve at 20 px).
"""
from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvalOptions:
    """How frames are scored. The defaults are got10k's OPE protocol."""

    exclude_absent: bool = False
    n_iou_thresholds: int = 21
    n_center_thresholds: int = 51
    n_norm_thresholds: int = 51
    max_norm_threshold: float = 0.5
    precision_threshold_px: int = 20

    @property
    def iou_thresholds(self) -> np.ndarray:
        return np.linspace(0, 1, self.n_iou_thresholds)

    @property
    def center_thresholds(self) -> np.ndarray:
        return np.arange(0, self.n_center_thresholds)

    @property
    def norm_thresholds(self) -> np.ndarray:
        return np.linspace(0, self.max_norm_threshold, self.n_norm_thresholds)


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-row IoU of two (N, 4) ``x,y,w,h`` arrays (got10k's ``rect_iou``)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"box arrays differ in shape: {pred.shape} vs {gt.shape}")
    x1 = np.maximum(pred[..., 0], gt[..., 0])
    y1 = np.maximum(pred[..., 1], gt[..., 1])
    x2 = np.minimum(pred[..., 0] + pred[..., 2], gt[..., 0] + gt[..., 2])
    y2 = np.minimum(pred[..., 1] + pred[..., 3], gt[..., 1] + gt[..., 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = np.prod(pred[..., 2:], axis=-1) + np.prod(gt[..., 2:], axis=-1) - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def centers(boxes: np.ndarray) -> np.ndarray:
    """Box centres ``x + (w - 1) / 2, y + (h - 1) / 2``."""
    boxes = np.asarray(boxes, np.float64)
    return boxes[..., :2] + (boxes[..., 2:] - 1) / 2


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance between centres, in pixels."""
    return np.sqrt(np.sum(np.power(centers(pred) - centers(gt), 2), axis=-1))


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre offset divided by the ground-truth width and height, then its Euclidean norm."""
    gt = np.asarray(gt, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (centers(pred) - centers(gt)) / gt[..., 2:]
    return np.sqrt(np.sum(d * d, axis=-1))


def success_curve(ious: np.ndarray, options: EvalOptions = EvalOptions()) -> np.ndarray:
    """Fraction of frames with IoU > t for each threshold t."""
    ious = np.asarray(ious, float)[:, np.newaxis]
    return np.mean(np.greater(ious, options.iou_thresholds[np.newaxis, :]), axis=0)


def precision_curve(errors: np.ndarray, options: EvalOptions = EvalOptions()) -> np.ndarray:
    """Fraction of frames with centre error <= t pixels for t = 0..50."""
    errors = np.asarray(errors, float)[:, np.newaxis]
    return np.mean(np.less_equal(errors, options.center_thresholds[np.newaxis, :]), axis=0)


def norm_precision_curve(errors: np.ndarray, options: EvalOptions = EvalOptions()) -> np.ndarray:
    """Fraction of frames with normalized centre error <= t for t in [0, 0.5]."""
    errors = np.asarray(errors, float)[:, np.newaxis]
    return np.mean(np.less_equal(errors, options.norm_thresholds[np.newaxis, :]), axis=0)


@dataclass(frozen=True)
class Curves:
    """Success, precision and normalized-precision curves with the scores read off them."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    n_frames: int
    options: EvalOptions = EvalOptions()

    @property
    def success_auc(self) -> float:
        return float(np.mean(self.success))

    @property
    def precision_20(self) -> float:
        return float(self.precision[self.options.precision_threshold_px])

    @property
    def success_rate_50(self) -> float:
        return float(self.success[self.options.n_iou_thresholds // 2])

    @property
    def norm_precision_score(self) -> float:
        return float(np.mean(self.norm_precision))

    def scores(self) -> dict[str, float]:
        return {
            "success_auc": self.success_auc,
            "precision_20": self.precision_20,
            "norm_precision": self.norm_precision_score,
            "success_rate_50": self.success_rate_50,
        }


def score_sequence(
    pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None, options: EvalOptions = EvalOptions()
) -> Curves | None:
    """Curves of one sequence; ``None`` when ``exclude_absent`` leaves no frame to score."""
    pred = np.array(pred, dtype=np.float64, copy=True).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth rows")
    pred[0] = gt[0]
    if options.exclude_absent:
        keep = ~np.isnan(gt).any(axis=1)
        if absent is not None:
            keep &= ~np.asarray(absent, bool)
        pred, gt = pred[keep], gt[keep]
        if len(gt) == 0:
            return None
    return Curves(
        success=success_curve(iou(pred, gt), options),
        precision=precision_curve(center_error(pred, gt), options),
        norm_precision=norm_precision_curve(normalized_center_error(pred, gt), options),
        n_frames=len(gt),
        options=options,
    )


def mean_curves(curves: SequenceABC[Curves]) -> Curves | None:
    """Mean of per-sequence curves (got10k's overall); ``None`` for an empty list."""
    if not curves:
        return None
    return Curves(
        success=np.mean(np.stack([c.success for c in curves]), axis=0),
        precision=np.mean(np.stack([c.precision for c in curves]), axis=0),
        norm_precision=np.mean(np.stack([c.norm_precision for c in curves]), axis=0),
        n_frames=int(sum(c.n_frames for c in curves)),
        options=curves[0].options,
    )


def attribute_curves(
    per_sequence: Mapping[str, Curves], attributes: Mapping[str, Mapping[str, bool]], codes: SequenceABC[str]
) -> dict[str, tuple[Curves, int]]:
    """For each attribute code: mean curves over the sequences flagged with it, and how many there are."""
    out = {}
    for code in codes:
        flagged = [c for name, c in per_sequence.items() if attributes.get(name, {}).get(code, False)]
        mean = mean_curves(flagged)
        if mean is not None:
            out[code] = (mean, len(flagged))
    return out
