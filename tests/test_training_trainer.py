"""The trainer: trains, checkpoints, resumes without loss, runs under torchrun (gloo), refuses held-out data."""

import numpy as np
import pytest
from conftest import shared_path

torch = pytest.importorskip("torch")

from edgetrack.errors import DataError, InputError  # noqa: E402
from edgetrack.training.config import load_config  # noqa: E402
from edgetrack.training.trainer import OptimConfig, TrainConfig, Trainer, lr_at  # noqa: E402


def _config(tmp_path, teacher, out="run", steps=4, mode="tsskd", **extra):
    overrides = [f"teacher={teacher}", f"out={tmp_path / out}", f"steps={steps}", "checkpoint_every=2",
                 "log_every=1", "threads=1", "data.synthetic=2", "data.batch_size=2", "data.workers=0",
                 "data.samples_per_epoch=6", "optim.warmup_steps=1", f"objective.mode={mode}",
                 *[f"{k}={v}" for k, v in extra.items()]]
    return load_config(TrainConfig, None, overrides)


def _train(cfg):
    from edgetrack.training.distributed import DistInfo
    from edgetrack.training.loader import make_loader_factory

    trainer = Trainer(cfg, make_loader_factory(cfg, DistInfo()))
    return trainer, trainer.run()


def test_distill_trains_checkpoints_and_students_track(tmp_path, tiny_checkpoint, clip):
    from edgetrack import Tracker

    trainer, result = _train(_config(tmp_path, tiny_checkpoint))
    assert result["steps"] == 4 and np.isfinite(result["intelligent/total"]) and "dull/ks" in result
    out = tmp_path / "run"
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("step,lr")
    frames, gt = clip
    for name in ("intelligent", "dull"):
        tracker = Tracker(out / f"student_{name}.safetensors", backend="torch")
        tracker.init(frames[0], gt[0])
        assert np.all(np.isfinite(tracker.update(frames[1]).box))


def test_resume_after_interruption_matches_uninterrupted(tmp_path, tiny_checkpoint):
    _, straight = _train(_config(tmp_path, tiny_checkpoint, out="straight", steps=4))
    _train(_config(tmp_path, tiny_checkpoint, out="interrupted", steps=2))  # "killed" after the step-2 checkpoint
    trainer, resumed = _train(_config(tmp_path, tiny_checkpoint, out="interrupted", steps=4))
    assert resumed["steps"] == 4
    a = torch.load(tmp_path / "straight" / "state.pt", weights_only=False)["students"]["dull"]
    b = torch.load(tmp_path / "interrupted" / "state.pt", weights_only=False)["students"]["dull"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
    assert len((tmp_path / "interrupted" / "log.csv").read_text().strip().splitlines()) == 1 + 4


def test_keep_every_keeps_weights_by_step_between_checkpoints(tmp_path, tiny_checkpoint):
    """Snapshots at every ``keep_every`` steps, also where no checkpoint was due, each the weights of its step."""
    from edgetrack.models.io import load_checkpoint

    _train(_config(tmp_path, tiny_checkpoint, steps=3, keep_every=1, checkpoint_every=10, students="dull"))
    out = tmp_path / "run"
    assert sorted(p.name for p in out.glob("student_dull_step*")) == [f"student_dull_step{i}.safetensors"
                                                                        for i in (1, 2, 3)]
    last, kept, first = (load_checkpoint(out / f"student_dull{s}.safetensors").state_dict()
                         for s in ("", "_step3", "_step1"))
    for k, a in last.items():
        assert torch.equal(a, kept[k]), k
    assert any(not torch.equal(a, first[k]) for k, a in last.items())
    with pytest.raises(InputError, match="keep_every"):
        _train(_config(tmp_path, tiny_checkpoint, out="bad", keep_every=-1))


def test_weight_average_follows_the_formula():
    from torch import nn

    from edgetrack.training.ema import WeightAverage

    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.9)
    assert "1.num_batches_tracked" not in avg.state_dict()  # integers are not averaged
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(2.0)
    avg.update(net, step=1)  # d = min(0.9, 2 / 11)
    d = 2 / 11
    assert torch.allclose(avg.state_dict()["0.weight"], d * w0 + (1 - d) * (w0 + 1.0))
    assert torch.allclose(avg.state_dict()["1.running_mean"], torch.full((2,), (1 - d) * 2.0))
    copy = avg.averaged(net)
    assert not copy.training and torch.equal(copy[0].weight, avg.state_dict()["0.weight"])
    assert not torch.equal(net[0].weight, copy[0].weight)  # the network itself is untouched
    for bad in (1.0, -0.5):
        with pytest.raises(InputError, match="ema_decay"):
            WeightAverage(net, bad)


def test_weight_average_is_saved_and_survives_a_resume(tmp_path, tiny_checkpoint):
    """``ema_decay``: the average beside each student (and per kept step), carried through an interruption."""
    from edgetrack.models.io import load_checkpoint

    extra = {"ema_decay": 0.5, "students": "dull"}
    _train(_config(tmp_path, tiny_checkpoint, out="straight", steps=4, keep_every=2, **extra))
    _train(_config(tmp_path, tiny_checkpoint, out="interrupted", steps=2, **extra))
    _train(_config(tmp_path, tiny_checkpoint, out="interrupted", steps=4, **extra))
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert (straight / "student_dull_step2_ema.safetensors").is_file()
    ema, raw = (load_checkpoint(straight / f"student_dull{s}.safetensors").state_dict() for s in ("_ema", ""))
    assert any(not torch.equal(v, raw[k]) for k, v in ema.items())
    a = torch.load(straight / "state.pt", weights_only=False)["averages"]["dull"]
    b = torch.load(interrupted / "state.pt", weights_only=False)["averages"]["dull"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_freeze_bn_keeps_the_starting_statistics_and_trains_the_rest(tmp_path, tiny_checkpoint):
    """``freeze_bn``: running means and variances stay as the student started; scales, shifts and convs learn."""
    from edgetrack.training.distributed import DistInfo
    from edgetrack.training.loader import make_loader_factory

    moved = {}
    for freeze in (True, False):
        cfg = _config(tmp_path, tiny_checkpoint, out=f"freeze_{freeze}", steps=3, students="dull", mode="mimic",
                      freeze_bn=freeze)
        trainer = Trainer(cfg, make_loader_factory(cfg, DistInfo()))
        start = {k: v.clone() for k, v in trainer.students["dull"].state_dict().items()}
        trainer.run()
        end = trainer.students["dull"].state_dict()
        stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
        weights = [k for k in start if k.endswith(".weight") and start[k].dtype.is_floating_point]
        assert stats and weights
        moved[freeze] = any(not torch.equal(start[k], end[k]) for k in stats)
        assert any(not torch.equal(start[k], end[k]) for k in weights)
    assert moved == {True: False, False: True}


def test_supervised_baseline_uses_ground_truth_only(tmp_path, tiny_checkpoint):
    _, result = _train(_config(tmp_path, tiny_checkpoint, mode="nokd", steps=2))
    assert "dull/cls" in result and "dull/ts" not in result


def test_lr_schedule():
    cfg = OptimConfig(lr=1e-2, lr_end=1e-4, warmup_steps=10)
    assert lr_at(0, cfg, 100) == pytest.approx(1e-3)
    assert lr_at(10, cfg, 100) == pytest.approx(1e-2)
    assert lr_at(100, cfg, 100) == pytest.approx(1e-4)


def test_config_errors(tmp_path):
    with pytest.raises(InputError, match="unknown config keys"):
        load_config(TrainConfig, None, ["optim.momentum=0.9"])
    with pytest.raises(InputError, match="cannot read"):
        load_config(TrainConfig, None, ["steps=many"])
    bad = tmp_path / "c.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match="mapping"):
        load_config(TrainConfig, bad)


def test_students_start_from_teacher_slices(tiny_checkpoint):
    from edgetrack.models.io import load_checkpoint
    from edgetrack.models.registry import build_model
    from edgetrack.training.students import init_from_teacher, student_spec

    teacher = load_checkpoint(tiny_checkpoint)
    student = build_model(student_spec(teacher.spec, "intelligent", width=0.5))
    copied = init_from_teacher(student, teacher)
    w_s = student.state_dict()["backbone.features.1.conv.0.weight"]
    w_t = teacher.state_dict()["backbone.features.1.conv.0.weight"]
    assert "backbone.features.1.conv.0.weight" in copied
    assert torch.equal(w_s, w_t[: w_s.shape[0], : w_s.shape[1]])


def test_validation_sequences_are_refused():
    from edgetrack.training.loader import gather_sources
    from edgetrack.training.trainer import DataConfig

    dev = shared_path("data", "dev-sequences")
    sources = gather_sources(DataConfig(data=(str(dev),)), "dev")
    names = {s.name for s in sources}
    assert "vot_bag" not in names and "otb_Biker" in names
    with pytest.raises(DataError, match="validation"):
        gather_sources(DataConfig(videos=(str(shared_path("data", "videos", "pysot_bag.avi")),)), "dev")
