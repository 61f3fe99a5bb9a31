"""Self-distillation of a vit-family tracker: layer matching, the student's spec and start, the losses, and a
short resumable run on generated sequences."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgetrack.errors import InputError  # noqa: E402
from edgetrack.models import build_model  # noqa: E402
from edgetrack.models.io import load_checkpoint, save_checkpoint  # noqa: E402
from edgetrack.models.vit_spec import vit_spec  # noqa: E402
from edgetrack.training import selfdistill as sd  # noqa: E402

TINY = dict(width=16, depth=3, heads=2, mlp_ratio=2, embed_channels=[4, 8, 16], head_channels=[8, 4])


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    torch.manual_seed(0)
    net = build_model(vit_spec(dict(TINY), exemplar_size=32, instance_size=64, name="tiny-vit")).eval()
    return save_checkpoint(net, tmp_path_factory.mktemp("sd") / "teacher.safetensors")


def test_layers_at_matching_relative_depth():
    assert sd.matching_layers(3, 3) == [0, 1, 2]
    assert sd.matching_layers(2, 3) == [1, 2]
    assert sd.matching_layers(1, 3) == [2]
    assert sd.matching_layers(2, 12) == [5, 11]
    with pytest.raises(InputError, match="depth"):
        sd.matching_layers(4, 3)


def test_student_spec(teacher_path):
    spec = sd.student_spec(load_checkpoint(teacher_path).spec, 2, width=8)
    assert spec.arch["depth"] == 2 and spec.arch["width"] == 8 and spec.arch["embed_channels"][-1] == 8
    with pytest.raises(InputError, match="multiple"):
        sd.student_spec(load_checkpoint(teacher_path).spec, 2, width=9)


def test_full_depth_student_starts_as_the_teacher(teacher_path):
    teacher = load_checkpoint(teacher_path)
    student = build_model(sd.student_spec(teacher.spec, 3)).eval()
    sd.init_from_teacher(student, teacher, sd.matching_layers(3, 3))
    z, x = torch.rand(2, 3, 32, 32) * 255, torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        t_out, t_feats = teacher.forward_train(z, x)
        s_out, s_feats = student.forward_train(z, x)
    for a, b in zip(t_out, s_out):
        assert torch.equal(a, b)
    cfg = sd.SelfDistillConfig()
    terms = sd.distill_losses(cfg, s_out, s_feats, t_out, t_feats, [0, 1, 2], sd.Projectors(3, 16, 16))
    assert float(terms["token"]) == 0.0 and float(terms["box"]) == 0.0


def test_search_tokens_on_the_target_weigh_more():
    score = torch.zeros(1, 1, 2, 2)
    score[0, 0, 1, 1] = 0.8
    w = sd.token_weights(score, 6, focus=4.0)
    assert w.tolist() == [[1.0, 1.0, 1.0, 1.0, 1.0, 5.0]]


def test_short_run_resumes(teacher_path, tmp_path):
    from edgetrack.training.cli import main

    out = tmp_path / "run"
    args = ["selfdistill", "--teacher", str(teacher_path), "--depth", "2", "--width", "8", "--synthetic", "1",
            "--out", str(out), "--set", "data.workers=0", "--set", "data.batch_size=2", "--set", "data.split=",
            "--set", "checkpoint_every=2", "--set", "data.samples_per_epoch=4"]
    assert main([*args, "--steps", "2"]) == 0
    first = load_checkpoint(out / "student.safetensors")
    assert first.spec.arch["depth"] == 2 and first.spec.arch["width"] == 8
    assert main([*args, "--steps", "4"]) == 0
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step") and rows[-1].startswith("4,")


def test_teacher_of_another_family_is_refused(tiny_checkpoint):
    with pytest.raises(InputError, match="vit"):
        sd.student_spec(load_checkpoint(tiny_checkpoint).spec, 1)
