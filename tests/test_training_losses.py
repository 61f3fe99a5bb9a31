"""Tracking and distillation (TSsKD) losses: hand-computed values, branches, gradients and shapes."""
import math

import pytest

torch = pytest.importorskip("torch")

from edgetrack.models.correlation import xcorr_full  # noqa: E402
from edgetrack.training.losses import (  # noqa: E402
    LossWeights,
    balanced_bce,
    iou_loss_map,
    tracking_loss,
)
from edgetrack.training.losses_dlf import ChannelAdapter, pairwise_feature_loss, pointwise_feature_loss  # noqa: E402
from edgetrack.training.losses_kd import (  # noqa: E402
    KDConfig,
    adaptive_hard_loss,
    attention_distance,
    bounded_gate,
    soft_cls_kl,
    str_loss,
    teacher_bounded_reg,
    teacher_positive_mask,
    teacher_soft_loss,
    total_student_loss,
    xcorr_same,
)

LN2, LN3 = math.log(2.0), math.log(3.0)
CE_HAND = 0.5 * -math.log(0.75) + 0.5 * LN2  # positive with p_fg = 3/4, negative with p_bg = 1/2
KL_HAND = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)  # KL([1/4, 3/4] || [1/2, 1/2])


def t(values, shape=None):
    out = torch.tensor(values, dtype=torch.float64)
    return out if shape is None else out.reshape(shape)


def ltrb(*cells):
    """(1, 4, 1, N) ltrb map from N (l, t, r, b) tuples."""
    return t(cells).T.reshape(1, 4, 1, len(cells))


def close(a, b, tol=1e-6):
    value = lambda v: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)  # noqa: E731
    return abs(value(a) - value(b)) < tol


# ------------------------------------------------------------------------------------------ tracking losses
def test_anchor_free_hand_computed():
    cls = t([[0.0, 0.0, 5.0], [LN3, 0.0, -5.0]], (1, 2, 1, 3))  # cells: positive, negative, ignored
    label = t([[1, 0, -1]], (1, 1, 3)).long()
    reg = ltrb((1, 1, 1, 1), (9, 9, 9, 9), (3, 3, 3, 3))
    target = ltrb((2, 2, 2, 2), (0, 0, 0, 0), (0, 0, 0, 0))
    out = tracking_loss("nanotrack", {"cls": cls, "reg": reg}, {"cls_label": label, "reg_target": target})
    assert set(out) == {"cls", "reg", "total"}
    assert close(out["cls"], CE_HAND)
    assert close(out["reg"], 0.75)  # IoU = 4 / 16
    assert close(out["total"], CE_HAND + 0.75)
    iou = tracking_loss("anchor_free", (cls, reg), {"cls_label": label, "reg_target": target},
                        LossWeights(iou_type="iou", reg=2.0))
    assert close(iou["reg"], math.log(4.0)) and close(iou["total"], CE_HAND + 2 * math.log(4.0))


def test_iou_variants_hand_computed():
    pred, target = ltrb((1, 1, 3, 1)), ltrb((2, 2, 2, 2))  # I = 3*2 = 6, U = 8 + 16 - 6 = 18, C = 5*4 = 20
    assert close(iou_loss_map(pred, target, "linear_iou")[0, 0, 0], 1 - 1 / 3)
    assert close(iou_loss_map(pred, target, "iou")[0, 0, 0], math.log(3.0))
    assert close(iou_loss_map(pred, target, "giou")[0, 0, 0], 1 - (1 / 3 - 2 / 20))
    assert close(iou_loss_map(target, target, "giou")[0, 0, 0], 0.0)
    with pytest.raises(ValueError):
        LossWeights(iou_type="diou")


def _rpn_case(dx0=0.5, dy0=-2.0):
    """K=2, S=1: anchor 0 positive (p_fg 3/4, deltas (dx0, dy0, 0, 0), weight 1), anchor 1 negative."""
    cls = t([0.0, 0.0, LN3, 0.0], (1, 4, 1, 1))  # [bg0, bg1, fg0, fg1]
    reg = t([dx0, 9.0, dy0, 9.0, 0.0, 9.0, 0.0, 9.0], (1, 8, 1, 1))  # [dx*K, dy*K, dw*K, dh*K]
    targets = {"cls_label": t([1, 0], (1, 2, 1, 1)).long(), "reg_weight": t([1.0, 0.0], (1, 2, 1, 1)),
               "reg_target": torch.zeros(1, 4, 2, 1, 1, dtype=torch.float64)}
    return {"cls": cls, "reg": reg}, targets


def test_rpn_hand_computed():
    outputs, targets = _rpn_case()
    out = tracking_loss("siamrpn", outputs, targets)
    assert close(out["cls"], CE_HAND)
    assert close(out["reg"], 0.5 * 0.25 + (2.0 - 0.5))  # smooth-L1, beta 1
    l1 = tracking_loss("rpn", outputs, targets, LossWeights(smooth_l1_beta=0.0, reg=1.2))
    assert close(l1["reg"], 2.5) and close(l1["total"], CE_HAND + 1.2 * 2.5)  # pysot's weight_l1_loss


def test_siamfc_hand_computed():
    response, labels = t([LN3, 0.0], (1, 1, 1, 2)), t([1.0, 0.0], (1, 1, 1, 2))
    out = tracking_loss("siamfc", {"response": response}, {"labels": labels})
    assert set(out) == {"cls", "total"} and close(out["cls"], CE_HAND)
    weighted = balanced_bce(response, labels, t([1.0, 3.0], (1, 1, 1, 2)))
    assert close(weighted, (-math.log(0.75) + 3 * LN2) / 4)


@pytest.mark.parametrize("family", ["nanotrack", "siamrpn", "siamfc"])
def test_tracking_loss_shapes(family):
    outs, targets = _random_case(family, batch=3)
    out = tracking_loss(family, outs, targets)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert ("reg" in out) == (family != "siamfc")
    with pytest.raises(ValueError):
        tracking_loss("fcos", outs, targets)


# -------------------------------------------------------------------------------------------- teacher soft
def test_kl_hand_computed_and_temperature():
    student, teacher = t([0.0, 0.0], (1, 2, 1, 1)), t([0.0, LN3], (1, 2, 1, 1))
    assert close(soft_cls_kl("nanotrack", student, teacher), KL_HAND)
    p = 1 / (1 + math.exp(-LN3 / 2))  # teacher fg prob at temperature 2
    kl2 = (1 - p) * math.log((1 - p) / 0.5) + p * math.log(p / 0.5)
    assert close(soft_cls_kl("nanotrack", student, teacher, temperature=2.0), 4 * kl2)
    # SiamFC's Bernoulli KL of one logit z equals the two-class KL of logits [0, z].
    assert close(soft_cls_kl("siamfc", t([0.0], (1, 1, 1, 1)), t([LN3], (1, 1, 1, 1))), KL_HAND)


@pytest.mark.parametrize("family", ["nanotrack", "siamrpn", "siamfc"])
def test_kl_zero_for_identical_outputs(family):
    outs, _ = _random_case(family)
    key = "response" if family == "siamfc" else "cls"
    assert abs(float(soft_cls_kl(family, outs[key], outs[key].clone(), temperature=3.0))) < 1e-9
    assert abs(float(teacher_soft_loss(family, outs, {k: v.clone() for k, v in outs.items()})["total"])) < 1e-9


def test_teacher_soft_regression_on_teacher_positive_cells():
    student = {"cls": torch.zeros(1, 2, 1, 2, dtype=torch.float64), "reg": ltrb((1, 1, 1, 1), (5, 5, 5, 5))}
    teacher = {"cls": t([[0.0, 0.0], [LN3, -LN3]], (1, 2, 1, 2)), "reg": ltrb((2, 2, 2, 2), (1, 1, 1, 1))}
    mask = teacher_positive_mask("nanotrack", teacher["cls"])
    assert mask.tolist() == [[[True, False]]]
    out = teacher_soft_loss("nanotrack", student, teacher)
    assert close(out["reg"], 0.75)  # only cell 0, where the teacher's p_fg = 3/4
    assert close(out["cls"], KL_HAND)  # both cells: KL([1/4,3/4]||.) and KL([3/4,1/4]||.) are equal
    top = teacher_positive_mask("nanotrack", torch.zeros(2, 2, 3, 3), topk=2)
    assert top.shape == (2, 3, 3) and top.sum(dim=(1, 2)).tolist() == [2, 2]


def test_teacher_soft_rpn_smooth_l1():
    student, _ = _rpn_case()
    teacher, _ = _rpn_case(dx0=0.0, dy0=0.0)  # anchor 0 teacher-positive (p_fg 3/4), anchor 1 not (1/2)
    out = teacher_soft_loss("siamrpn", student, teacher)
    assert close(out["cls"], 0.0) and close(out["reg"], 0.125 + 1.5)


# ------------------------------------------------------------------------------------------- adaptive hard
def _two_cell_case(student_cells, teacher_cells):
    target = ltrb((2, 2, 2, 2), (2, 2, 2, 2))
    targets = {"cls_label": torch.ones(1, 1, 2, dtype=torch.long), "reg_target": target}
    return ltrb(*student_cells), ltrb(*teacher_cells), targets


def test_ah_student_beats_teacher_by_margin_is_dropped():
    # student cells: IoU loss 0 and 7/16 (mean 0.21875); teacher: 0.75 and 0 (mean 0.375)
    s, te, targets = _two_cell_case([(2, 2, 2, 2), (1.5, 1.5, 1.5, 1.5)], [(1, 1, 1, 1), (2, 2, 2, 2)])
    by_sample, unbounded, kept = teacher_bounded_reg("nanotrack", s, te, targets, 0.005, "sample")
    assert close(by_sample, 0.0) and close(unbounded, 0.21875) and close(kept, 0.0)
    by_cell, _, kept = teacher_bounded_reg("nanotrack", s, te, targets, 0.005, "cell")
    assert close(by_cell, 0.4375 / 2) and close(kept, 0.5)  # only cell 1 (student worse there) counts


def test_ah_student_worse_than_teacher_counts():
    s, te, targets = _two_cell_case([(1, 1, 1, 1), (2, 2, 2, 2)], [(2, 2, 2, 2), (1.5, 1.5, 1.5, 1.5)])
    by_sample, unbounded, kept = teacher_bounded_reg("nanotrack", s, te, targets, 0.005, "sample")
    assert close(by_sample, 0.375) and close(unbounded, 0.375) and close(kept, 1.0)


def test_ah_margin_both_ways_rpn():
    assert bool(bounded_gate(t(0.5), t(0.503), 0.005)) and not bool(bounded_gate(t(0.5), t(0.506), 0.005))
    student, targets = _rpn_case(dx0=0.1, dy0=0.0)  # L_s = 0.5 * 0.1^2 = 0.005
    close_teacher, _ = _rpn_case(dx0=0.12, dy0=0.0)  # L_t = 0.0072: student better, but by less than m
    far_teacher, _ = _rpn_case(dx0=0.2, dy0=0.0)  # L_t = 0.02: student better by more than m
    for granularity in ("sample", "cell"):
        cfg = KDConfig(ah_granularity=granularity)
        assert close(adaptive_hard_loss("siamrpn", student, close_teacher, targets, cfg)["reg"], 0.005)
        out = adaptive_hard_loss("siamrpn", student, far_teacher, targets, cfg)
        assert close(out["reg"], 0.0) and close(out["cls"], CE_HAND) and close(out["total"], CE_HAND)


# ------------------------------------------------------------------------------------------------------ STR
def test_attention_distance_hand_computed():
    a, b = t([[1.0, 0.0], [0.0, 0.0]], (1, 2, 2)), t([[0.0, 1.0], [0.0, 0.0]], (1, 2, 2))
    assert close(attention_distance(a, b), math.sqrt(2.0), 1e-5)  # orthogonal unit vectors
    assert close(attention_distance(3 * b, b), 0.0, 1e-5)  # scale-free
    assert close(attention_distance(t([[2.0]], (1, 1, 1)), t([[5.0]], (1, 1, 1))), 0.0, 1e-5)


def test_xcorr_same_matches_reference_correlation():
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(2, 3, 6, 7, generator=g), torch.randn(2, 3, 3, 4, generator=g)
    ref = xcorr_full(torch.nn.functional.pad(x, (1, 2, 1, 1)), z)
    assert xcorr_same(x, z).shape == (2, 1, 6, 7)
    assert torch.allclose(xcorr_same(x, z), ref, atol=1e-5)
    assert torch.allclose(xcorr_same(x, z[:1]), xcorr_full(torch.nn.functional.pad(x, (1, 2, 1, 1)), z[:1]),
                          atol=1e-5)


@pytest.mark.parametrize("norm", ["minmax", "softmax"])
def test_str_zero_for_identical_and_positive_otherwise(norm):
    g = torch.Generator().manual_seed(1)
    feats = {"zf": torch.randn(2, 8, 4, 4, generator=g), "xf": torch.randn(2, 8, 8, 8, generator=g)}
    same = {k: v.clone() for k, v in feats.items()}
    assert float(str_loss(feats, same, norm)) < 1e-6
    other = {"zf": torch.randn(2, 16, 5, 5, generator=g), "xf": torch.randn(2, 16, 10, 10, generator=g)}
    assert float(str_loss(feats, other, norm)) > 0  # different channels and sizes
    assert float(str_loss([feats, feats], [other, same], norm)) == pytest.approx(float(str_loss(feats, other, norm)))
    template_only = float(str_loss({"zf": feats["zf"]}, other, norm))
    assert 0 < template_only < float(str_loss(feats, other, norm))


# ------------------------------------------------------------------------------------------------- overall
@pytest.mark.parametrize("family", ["nanotrack", "siamrpn", "siamfc"])
def test_total_student_loss_composition_and_gradients(family):
    student, targets = _random_case(family, seed=1, grad=True)
    teacher, _ = _random_case(family, seed=2, grad=True)
    g = torch.Generator().manual_seed(3)
    s_feats = {"zf": torch.randn(2, 4, 4, 4, generator=g, requires_grad=True),
               "xf": torch.randn(2, 4, 8, 8, generator=g, requires_grad=True)}
    t_feats = {"zf": torch.randn(2, 6, 3, 3, generator=g, requires_grad=True),
               "xf": torch.randn(2, 6, 7, 7, generator=g, requires_grad=True)}
    cfg = KDConfig()
    ks = student[next(iter(student))].sum() * 0.01
    out = total_student_loss(family, student, teacher, targets, student_feats=s_feats, teacher_feats=t_feats,
                             ks=ks, cfg=cfg)
    expected = out["ts"] + cfg.lam * out["ah"] + cfg.omega * out["str"] + out["ks"]
    assert close(out["total"], expected, 1e-9) and all(v.dim() == 0 for v in out.values())
    assert ("ah_reg" in out) == (family != "siamfc") and not out["gt"].requires_grad
    out["total"].backward()
    assert all(v.grad is None for v in (*teacher.values(), *t_feats.values()))
    assert all(v.grad is not None and torch.isfinite(v.grad).all() for v in (*student.values(), *s_feats.values()))


def test_total_with_tiny_nanotrack_networks():
    from conftest import tiny_spec

    from edgetrack.models import build_model

    torch.manual_seed(0)
    student, teacher = build_model(tiny_spec()), build_model(tiny_spec()).eval()
    z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    s_out, s_feats = _outputs_and_features(student, z, x)
    with torch.no_grad():
        t_out, t_feats = _outputs_and_features(teacher, z, x)
    size = s_out[0].shape[-1]
    label = torch.zeros(2, size, size, dtype=torch.long)
    label[:, size // 2, size // 2] = 1
    targets = {"cls_label": label, "reg_target": torch.full((2, 4, size, size), 20.0)}
    out = total_student_loss("nanotrack", s_out, t_out, targets,
                             student_feats=s_feats, teacher_feats=t_feats)
    assert torch.isfinite(out["total"])
    out["total"].backward()
    assert all(p.grad is None for p in teacher.parameters())


# --------------------------------------------------------------------------------------------- DLF options
def test_pointwise_feature_loss():
    f = torch.randn(2, 4, 3, 3)
    assert close(pointwise_feature_loss(f + 1.0, f), 1.0)
    s = torch.randn(2, 3, 5, 5, requires_grad=True)
    with pytest.raises(ValueError):
        pointwise_feature_loss(s, f)
    adapter = ChannelAdapter(3, 4)
    pointwise_feature_loss(s, f, adapter).backward()
    assert adapter.conv.weight.grad is not None and s.grad is not None


def test_pairwise_feature_loss_hand_computed():
    s, te = t([1.0, 1.0], (1, 1, 1, 2)), t([1.0, -1.0], (1, 1, 1, 2))
    assert close(pairwise_feature_loss(s, te), 2.0)  # [[1,1],[1,1]] vs [[1,-1],[-1,1]]
    f = torch.randn(2, 5, 6, 6)
    assert float(pairwise_feature_loss(f * 3.0, f)) < 1e-10  # cosine similarities ignore scale
    assert float(pairwise_feature_loss(torch.randn(2, 3, 4, 4), f, pool=3)) > 0


# ------------------------------------------------------------------------------------------------- helpers
def _outputs_and_features(net, z, x):
    """Head outputs and ``{"zf", "xf"}`` backbone features of a NanoTrack network."""
    if hasattr(net, "forward_train"):
        return net.forward_train(z, x)
    return net(z, x), net.feature_maps(z, x)


def _random_case(family, batch=2, seed=0, grad=False):
    """Random outputs and targets of a small head (S=5, K=3 for RPN)."""
    g = torch.Generator().manual_seed(seed)
    s, k = 5, 3

    def rnd(*shape):
        return torch.randn(*shape, generator=g)

    label = torch.randint(-1, 2, (batch, s, s), generator=g)
    label[:, 2, 2] = 1
    if family == "siamfc":
        outs = {"response": rnd(batch, 1, s, s)}
        targets = {"labels": (label[:, None] == 1).float()}
    elif family == "siamrpn":
        outs = {"cls": rnd(batch, 2 * k, s, s), "reg": rnd(batch, 4 * k, s, s)}
        rlabel = torch.randint(-1, 2, (batch, k, s, s), generator=g)
        rlabel[:, 0, 2, 2] = 1
        pos = (rlabel == 1).float()
        targets = {"cls_label": rlabel, "reg_target": rnd(batch, 4, k, s, s),
                   "reg_weight": pos / pos.sum(dim=(1, 2, 3), keepdim=True)}
    else:
        outs = {"cls": rnd(batch, 2, s, s), "reg": torch.exp(rnd(batch, 4, s, s)) * 10}
        targets = {"cls_label": label, "reg_target": torch.exp(rnd(batch, 4, s, s)) * 10}
    if grad:
        outs = {key: v.requires_grad_(True) for key, v in outs.items()}
    return outs, targets
