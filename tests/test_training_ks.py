"""Knowledge sharing (TSsKD Eqs. 17, 18, 22, 33), the Table 4 loss combinations, multi-layer STR, students given
by spec and n >= 3 students trained together."""
import json
import math

import pytest

torch = pytest.importorskip("torch")

from test_training_losses import _random_case, close  # noqa: E402

from edgetrack.training.losses_kd import KDConfig, total_student_loss  # noqa: E402
from edgetrack.training.losses_ks import (  # noqa: E402
    beta_matrix,
    ks_cls,
    ks_gate,
    ks_reg,
    ks_sigma,
    ks_total,
    ks_weights,
    two_student_beta,
)


def test_gate_tests_the_learners_own_loss_against_the_teachers_with_a_relative_h():
    cfg = KDConfig(ks_sigma0=1.0, ks_decay=0.9, ks_h=0.1)
    assert ks_sigma(0, cfg) == 1.0 and close(ks_sigma(2, cfg), 0.81) and ks_sigma(200, cfg) == 0.0
    assert close(ks_gate(0.54, 0.5, 1, cfg), 0.9)  # gap 0.04 < h = 0.1 * 0.5
    assert ks_gate(0.56, 0.5, 1, cfg) == 0.0  # gap 0.06 >= h
    assert ks_gate(0.3, 0.5, 200, cfg) == 0.0  # sigma has decayed away


def test_weights_follow_eq33_with_one_over_n_and_beta():
    cfg = KDConfig(ks_h=0.1, ks_decay=1.0)
    beta = two_student_beta(0.5, intelligent=1)
    assert beta == [[0.0, 1.0], [0.5, 0.0]]
    # learner 0 is far from the teacher (gate shut), learner 1 (intelligent) close: only 1 learns, discounted
    w = ks_weights([0.9, 0.52], beta, teacher_loss_gt=0.5, epoch=0, cfg=cfg)
    assert w[0][1] == 0.0 and close(w[1][0], 0.5 / 2)
    w = ks_weights([0.5, 0.5, 0.5], beta_matrix(3, 0, 0.5), 0.5, 0, cfg)
    assert close(w[0][1], 0.5 / 3) and close(w[1][0], 1 / 3) and close(w[2][1], 1 / 3) and w[1][1] == 0.0


def test_eq17_is_kl_of_the_learner_to_the_sharer_summed_over_proposals():
    learner = torch.zeros(1, 2, 2, 2)  # p = [1/2, 1/2] everywhere
    sharer = torch.zeros(1, 2, 2, 2)
    sharer[:, 1] = math.log(3.0)  # p = [1/4, 3/4]
    per_cell = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # KL([1/2,1/2] || [1/4,3/4])
    assert close(ks_cls("nanotrack", learner, sharer), 4 * per_cell, 1e-5)
    assert close(ks_cls("nanotrack", learner, learner), 0.0)


def test_eq18_is_smooth_l1_on_all_proposals():
    learner = torch.full((2, 4, 3, 3), 10.0)
    sharer = learner.clone()
    sharer[0, 0, 0, 0] = 10.0 + 127.0  # one coordinate one exemplar size away: smooth-L1 = 1 - beta / 2
    assert close(ks_reg("nanotrack", learner, sharer, scale=127.0), (1 - 0.5 / 9) / 2, 1e-5)


def test_ks_total_reports_the_gate_and_sends_gradients_to_learners_only():
    cfg = KDConfig(ks_h=0.1, ks_decay=1.0)
    outs = [_random_case("nanotrack", seed=s, grad=True)[0] for s in range(3)]
    terms, info = ks_total([0.5, 0.9, 0.5], outs, beta_matrix(3, 0, 0.5), 0.5, 0, family="nanotrack", cfg=cfg)
    assert [i["ks_open"] for i in info] == [1.0, 0.0, 1.0] and close(info[1]["ks_gap"], 0.4)
    assert float(terms[1].detach()) == 0.0 and float(terms[0].detach()) > 0
    terms[0].backward()
    assert outs[0]["cls"].grad is not None and outs[1]["cls"].grad is None and outs[2]["reg"].grad is None


@pytest.mark.parametrize("use_ts,hard", [(True, "gt"), (False, "gt"), (True, "none"), (True, "ah")])
def test_table4_combinations(use_ts, hard):
    student, targets = _random_case("nanotrack", seed=1, grad=True)
    teacher, _ = _random_case("nanotrack", seed=2)
    cfg = KDConfig()
    out = total_student_loss("nanotrack", student, teacher, targets, cfg=cfg, use_ts=use_ts, hard=hard)
    hard_value = {"gt": out["gt"], "ah": out["ah"], "none": 0.0}[hard]
    assert close(out["total"], (out["ts"] if use_ts else 0.0) + cfg.lam * hard_value, 1e-6)
    with pytest.raises(ValueError):
        total_student_loss("nanotrack", student, teacher, targets, hard="soft")


def _spec_file(tmp_path, name="dull3"):
    path = tmp_path / "student_spec.json"
    path.write_text(json.dumps({"name": name, "cut": {"hidden_ratios": [1.0, 0.5, 0.3, 0.2],
                                                      "cls_ratios": [0.5], "reg_ratios": [1.0]}}))
    return path


def test_three_students_by_name_and_spec_train_with_sharing(tmp_path, tiny_checkpoint):
    from edgetrack.training.cli import main

    spec = _spec_file(tmp_path)
    out = tmp_path / "run"
    rc = main(["distill", "--teacher", str(tiny_checkpoint), "--synthetic", "2", "--out", str(out),
               "--steps", "4", "--set", "threads=1", "--set", "data.samples_per_epoch=6",
               "--students", "big,small", "--student-spec", str(spec),
               "--set", "cuts.big.hidden=1.0", "--set", "cuts.small.hidden=0.5", "--set", "data.batch_size=2",
               "--set", "data.workers=0", "--set", "optim.warmup_steps=0", "--set", "objective.kd.ks_h=100",
               "--set", "checkpoint_every=2", "--set", "log_every=1"])
    assert rc == 0
    for name in ("big", "small", "dull3"):
        assert (out / f"student_{name}.safetensors").exists()
    gate = json.loads((out / "ks_gate.json").read_text())
    assert set(gate) == {"big", "small", "dull3"} and gate["small"]["steps"] == 4 and gate["small"]["open"] == 4
    assert gate["small"]["first_open_step"] == 1
    log = (out / "log.csv").read_text().splitlines()[0]
    assert "dull3/ks_open_rate" in log and "dull3/str" in log


def test_student_spec_errors(tmp_path):
    from edgetrack.errors import SpecError
    from edgetrack.training.students import read_student_spec

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(SpecError):
        read_student_spec(bad)
    name, cut = read_student_spec(_spec_file(tmp_path, name=""))
    assert name == "dull" and cut.hidden_ratios == (1.0, 0.5, 0.3, 0.2)
