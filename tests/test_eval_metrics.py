"""OPE metrics: known values, got10k's conventions, absent-frame handling and averaging."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgetrack.evaluation.metrics import (
    EvalOptions,
    attribute_curves,
    center_error,
    iou,
    mean_curves,
    normalized_center_error,
    precision_curve,
    score_sequence,
    success_curve,
)


def test_iou_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [np.nan] * 4], float)
    out = iou(a, b)
    np.testing.assert_allclose(out[:3], [1.0, 50 / 150, 0.0], atol=1e-12)
    assert np.isnan(out[3])


def test_center_uses_w_minus_one_over_two():
    a = np.array([[0, 0, 11, 11]], float)
    b = np.array([[3, 4, 11, 11]], float)
    assert center_error(a, b)[0] == pytest.approx(5.0)
    assert np.isnan(normalized_center_error(a, np.array([[np.nan] * 4])))[0]
    big = np.array([[0, 0, 100, 100]], float)
    assert normalized_center_error(big + [[10, 0, 0, 0]], big)[0] == pytest.approx(0.1)


box_rows = arrays(np.float64, (12, 4), elements=st.floats(0, 200, allow_nan=False))


@settings(max_examples=50, deadline=None)
@given(box_rows, box_rows)
def test_matches_got10k_utils_exactly(a, b):
    m = pytest.importorskip("got10k.utils.metrics")
    np.testing.assert_array_equal(iou(a, b), m.rect_iou(a.copy(), b.copy()))
    np.testing.assert_array_equal(center_error(a, b), m.center_error(a, b))


def test_threshold_conventions():
    opts = EvalOptions()
    s = success_curve(np.array([0.5]), opts)
    assert s[10] == 0.0 and s[9] == 1.0  # IoU must be strictly greater than t
    p = precision_curve(np.array([20.0]), opts)
    assert p[20] == 1.0 and p[19] == 0.0  # centre error <= t counts
    assert len(s) == 21 and len(p) == 51


def test_first_frame_is_replaced_by_ground_truth():
    gt = np.array([[10, 10, 20, 20]] * 4, float)
    pred = np.array([[100, 100, 5, 5]] * 4, float)
    c = score_sequence(pred, gt)
    assert c.success_rate_50 == pytest.approx(0.25) and c.precision_20 == pytest.approx(0.25)


def test_absent_frames_fail_by_default_and_can_be_excluded():
    gt = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [np.nan] * 4, [10, 10, 20, 20]], float)
    pred = np.array([[10, 10, 20, 20]] * 4, float)
    default = score_sequence(pred, gt)
    assert default.success_rate_50 == pytest.approx(0.75) and default.precision_20 == pytest.approx(0.75)
    assert default.n_frames == 4
    excluded = score_sequence(pred, gt, options=EvalOptions(exclude_absent=True))
    assert excluded.success_rate_50 == 1.0 and excluded.n_frames == 3
    flagged = score_sequence(pred, gt, absent=np.array([0, 1, 0, 0], bool), options=EvalOptions(exclude_absent=True))
    assert flagged.n_frames == 2
    all_absent = np.array([[10, 10, 20, 20]] + [[np.nan] * 4] * 2, float)
    assert score_sequence(pred[:3], all_absent, absent=np.array([1, 0, 0], bool),
                          options=EvalOptions(exclude_absent=True)) is None


def test_scores_read_off_curves():
    gt = np.array([[0, 0, 10, 10]] * 5, float)
    pred = gt + np.array([[0, 0, 0, 0], [1, 0, 0, 0], [3, 0, 0, 0], [30, 0, 0, 0], [0, 0, 0, 0]])
    c = score_sequence(pred, gt)
    assert c.success_auc == pytest.approx(np.mean(c.success))
    assert c.precision_20 == c.precision[20] == pytest.approx(0.8)
    assert c.norm_precision_score == pytest.approx(np.mean(c.norm_precision))
    assert set(c.scores()) == {"success_auc", "precision_20", "norm_precision", "success_rate_50"}
    with pytest.raises(ValueError, match="4 predicted boxes for 5"):
        score_sequence(pred[:4], gt)


def test_overall_is_the_mean_of_sequence_curves():
    gt = np.array([[0, 0, 10, 10]] * 10, float)
    good = score_sequence(gt, gt)
    bad_pred = gt.copy()
    bad_pred[1:, 0] += 100
    bad = score_sequence(bad_pred[:2], gt[:2])  # a short sequence weighs as much as a long one
    overall = mean_curves([good, bad])
    assert overall.success_rate_50 == pytest.approx((1.0 + 0.5) / 2)
    assert overall.n_frames == 12 and mean_curves([]) is None
    per_att = attribute_curves({"a": good, "b": bad}, {"a": {"OV": True}, "b": {"OV": False, "SV": True}},
                               ["OV", "SV", "MB"])
    assert per_att["OV"][1] == 1 and per_att["OV"][0].success_rate_50 == 1.0
    assert per_att["SV"][0].success_rate_50 == 0.5 and "MB" not in per_att
