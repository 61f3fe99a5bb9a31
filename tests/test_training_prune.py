"""Students cut from the teacher: exact copy at keep-all, index-selected weights, mean compensation, taps,
the shape chooser, pseudo-tracks and the two-stage training path (mimic, then TSsKD from the first stage)."""
import csv

import cv2
import numpy as np
import pytest
from conftest import TINY_ARCH, tiny_spec

torch = pytest.importorskip("torch")

from edgetrack.errors import DataError, SpecError  # noqa: E402
from edgetrack.models import build_model  # noqa: E402
from edgetrack.training.prune import PruneConfig, Stats, feature_taps, measure, pruned_arch  # noqa: E402
from edgetrack.training.prune_build import prune_teacher  # noqa: E402


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    net = build_model(tiny_spec().with_(arch={**TINY_ARCH, "cls_tower": [[3, 16]] * 3,
                                              "reg_tower": [[3, 16]] * 3}))
    for m in net.modules():  # non-trivial batch-norm statistics, as in a trained network
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.2, 1.5)
    return net.eval()


def _crops(seed, n=2, batch=4):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch, 3, 127, 127, generator=g) * 255, torch.rand(batch, 3, 255, 255, generator=g) * 255)
            for _ in range(n)]


def _outputs(net, crops):
    with torch.no_grad():
        return [net.search(x, *net.template(z)) for z, x in crops]


def test_keep_all_is_the_teacher_exactly(teacher):
    crops = _crops(0)
    student = prune_teacher(teacher, PruneConfig(hidden=1.0, tower=1.0), measure(teacher, crops))
    for (tc, tr), (sc, sr) in zip(_outputs(teacher, crops), _outputs(student, crops)):
        assert torch.equal(tc, sc) and torch.equal(tr, sr)


def test_pruned_shapes_dropped_block_and_taps(teacher):
    cfg = PruneConfig(hidden=0.5, drop_blocks=(3,), tower=0.5, tower_depth=2)
    arch = pruned_arch(teacher.spec.arch, cfg)
    # 24 -> 16 (12 rounded to a multiple of 8); 32 -> 16 would equal the input width (another layout) -> 24
    assert [row[1] for row in arch["blocks"]] == [8, 16, 24]
    assert len(arch["blocks"]) == 3 and arch["cls_tower"] == [[3, 8], [3, 8]]
    assert feature_taps(teacher.spec.arch, cfg) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    student = prune_teacher(teacher, cfg, measure(teacher, _crops(0)))
    cls, reg = _outputs(student, _crops(1))[0]
    assert cls.shape == (4, 2, 16, 16) and torch.isfinite(reg).all()
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
    with pytest.raises(SpecError, match="cannot be dropped"):
        pruned_arch(teacher.spec.arch, PruneConfig(drop_blocks=(1,)))


def test_kept_channels_carry_the_teachers_weights(teacher):
    student = prune_teacher(teacher, PruneConfig(hidden=0.5, tower=1.0), measure(teacher, _crops(0)))
    t_expand = teacher.backbone.features[2].conv[0].weight.flatten(1)
    s_expand = student.backbone.features[2].conv[0].weight.flatten(1)
    matches = [(t_expand == row).all(dim=1).any().item() for row in s_expand]
    assert all(matches) and len(s_expand) == 16


def test_mean_compensation_brings_the_student_closer(teacher):
    calib, held = _crops(0, n=3), _crops(5)
    stats = measure(teacher, calib)
    zero = Stats(mean={k: torch.zeros_like(v) for k, v in stats.mean.items()}, sq=stats.sq, n=stats.n)
    cfg = PruneConfig(hidden=0.5, tower=0.5)

    def feature_error(student):
        with torch.no_grad():
            return sum(float((student.backbone(x) - teacher.backbone(x)).pow(2).mean()) for _, x in held)

    assert feature_error(prune_teacher(teacher, cfg, stats)) < feature_error(prune_teacher(teacher, cfg, zero))


def test_importance_methods_and_bad_configs(teacher):
    stats = measure(teacher, _crops(0))
    a = prune_teacher(teacher, PruneConfig(hidden=0.5, importance="energy"), stats)
    b = prune_teacher(teacher, PruneConfig(hidden=0.5, importance="bn"), stats)
    assert a.spec.arch == b.spec.arch
    with pytest.raises(SpecError):
        PruneConfig(hidden=0.0)
    with pytest.raises(SpecError):
        PruneConfig(importance="magic")
    with pytest.raises(SpecError, match="statistics"):
        prune_teacher(teacher, PruneConfig(), None)


def test_shape_chooser_respects_the_latency_target(teacher):
    from edgetrack.training.prune_search import PruneGrid, choose_shape, overrides_for

    grid = PruneGrid(hidden=(0.5, 1.0), drop_blocks=((),), tower=(0.5,), tower_depth=(0,))
    crops = _crops(0, n=2, batch=2)
    found = choose_shape(teacher, crops, target_ms=1e6, grid=grid, runs=3, progress=False)
    assert len(found["candidates"]) == 2 and found["chosen"]["config"]["hidden"] == 1.0  # closest to teacher
    assert "prune.fast.hidden=1.0" in overrides_for(found["chosen"])
    assert choose_shape(teacher, crops, target_ms=1e-6, grid=grid, runs=3, progress=False)["chosen"] is None


def _write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()


@pytest.fixture(scope="module")
def pool(tmp_path_factory, clip):
    """A pool folder: two unlabeled training videos and one labelled validation video, with a manifest."""
    root = tmp_path_factory.mktemp("pool")
    frames, gt = clip
    rows = []
    for name, split in (("walk", "train"), ("park", "train"), ("heldout", "val")):
        _write_video(root / f"{name}.avi", frames)
        has_gt = "no"
        if split == "val":
            np.savetxt(root / f"{name}.txt", gt, delimiter=",", fmt="%.2f")
            has_gt = "yes"
        rows.append({"name": name, "file": f"{name}.avi", "frames": len(frames), "width": frames[0].shape[1],
                     "height": frames[0].shape[0], "has_gt": has_gt, "split": split})
    with open(root / "MANIFEST.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return root


def test_pseudo_tracks_are_cached_and_pool_val_rows_never_used(tmp_path, tiny_checkpoint, pool, monkeypatch):
    from edgetrack.training import pseudo
    from edgetrack.training.loader import pool_sources
    from edgetrack.training.trainer import DataConfig

    cfg = DataConfig(pool=(str(pool),), pseudo_tracks=1, pseudo_min_score=0.0, cache=str(tmp_path / "cache"))
    sources = pool_sources(cfg, str(tiny_checkpoint), set())
    names = [getattr(s, "name", "") for s in sources]
    assert not any("heldout" in n for n in names) and sum("walk" in n for n in names) >= 1
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    tracks = [s for s in sources if isinstance(s, pseudo.PseudoTrack)]
    for t in tracks:
        assert len(t) == 12 and np.isfinite(t.gt[~t.absent]).all() and t.frame(0).shape == (192, 256, 3)

    def no_teacher(*a, **k):
        raise AssertionError("the teacher ran again instead of the cache")

    monkeypatch.setattr("edgetrack.runtime.Tracker", no_teacher)
    again = pool_sources(cfg, str(tiny_checkpoint), set())
    assert [getattr(s, "name", "") for s in again] == names
    with pytest.raises(DataError, match="validation"):
        pool_sources(DataConfig(pool=(str(pool),)), str(tiny_checkpoint), {"walk"})


def _stage_config(tmp_path, teacher, out, **extra):
    from edgetrack.training.config import load_config
    from edgetrack.training.trainer import TrainConfig

    overrides = [f"teacher={teacher}", f"out={tmp_path / out}", "steps=3", "checkpoint_every=3", "log_every=1",
                 "threads=1", "data.synthetic=2", "data.batch_size=2", "data.workers=0",
                 "data.samples_per_epoch=6", "optim.warmup_steps=1", "students=fast,accurate",
                 "prune.calib_batches=2", "prune.fast.drop_blocks=3", "prune.fast.tower_depth=0",
                 "objective.feat_weight=1.0", "objective.pair_weight=1.0",
                 *[f"{k}={v}" for k, v in extra.items()]]
    return load_config(TrainConfig, None, overrides)


def test_two_stage_training_mimic_then_tsskd(tmp_path, tiny_checkpoint, clip):
    from edgetrack import Tracker
    from edgetrack.training.distributed import DistInfo
    from edgetrack.training.loader import make_loader_factory
    from edgetrack.training.trainer import Trainer

    cfg = _stage_config(tmp_path, tiny_checkpoint, "stage1", **{"objective.mode": "mimic"})
    trainer = Trainer(cfg, make_loader_factory(cfg, DistInfo()))
    assert trainer.taps["fast"][-1] == (3, 3) and len(trainer.taps["accurate"]) == 5
    first = trainer.run()
    assert np.isfinite(first["fast/feat"]) and first["fast/feat"] > 0 and "fast/pair" in first
    assert "fast/ah" not in first  # no ground truth in the first stage
    cfg2 = _stage_config(tmp_path, tiny_checkpoint, "stage2", init_run=str(tmp_path / "stage1"),
                         **{"objective.mode": "tsskd", "objective.intelligent": 1})
    second = Trainer(cfg2, make_loader_factory(cfg2, DistInfo()))
    start = torch.load(tmp_path / "stage1" / "state.pt", weights_only=False)["students"]["fast"]
    for k, v in second.students["fast"].state_dict().items():
        assert k.endswith("num_batches_tracked") or torch.equal(v, start[k]), k
    result = second.run()
    assert "fast/ks" in result and np.isfinite(result["fast/total"])
    frames, gt = clip
    tracker = Tracker(tmp_path / "stage2" / "student_fast.safetensors", backend="torch")
    tracker.init(frames[0], gt[0])
    assert np.all(np.isfinite(tracker.update(frames[1]).box))
