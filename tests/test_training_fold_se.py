"""Squeeze-excite units replaced by their mean gates: exact folding, the spec that says so, and the training path
that starts a student from a previous stage without them."""
import numpy as np
import pytest
from conftest import TINY_ARCH, tiny_spec

torch = pytest.importorskip("torch")

from edgetrack.errors import InputError, SpecError  # noqa: E402
from edgetrack.models import build_model  # noqa: E402
from edgetrack.models.blocks import SqueezeExcite  # noqa: E402
from edgetrack.training.fold_se import fold_se, mean_gates  # noqa: E402


class _ConstantGate(torch.nn.Module):
    def __init__(self, gate: torch.Tensor) -> None:
        super().__init__()
        self.gate = gate.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate


def _net():
    torch.manual_seed(3)
    net = build_model(tiny_spec().with_(arch=dict(TINY_ARCH)))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.2, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return net.eval()


def _crops(seed: int, n: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(3, 3, 127, 127, generator=g) * 255, torch.rand(3, 3, 255, 255, generator=g) * 255)
            for _ in range(n)]


def test_gates_are_the_units_mean_outputs_over_both_branches():
    net = _net()
    crops = _crops(0)
    gates = mean_gates(net, crops)
    assert sorted(gates) == [1, 3, 4]  # the blocks whose rows say use_se = 1
    se = net.backbone.features[3].conv[5]
    with torch.no_grad():
        feats = []
        hook = se.register_forward_pre_hook(lambda mod, args: feats.append(args[0]))
        for z, x in crops:
            net.search(x, *net.template(z))
        hook.remove()
        expected = torch.cat([se.fc(f.mean(dim=(2, 3))) for f in feats]).mean(dim=0)
    assert torch.allclose(gates[3], expected, atol=1e-6)
    assert torch.all((gates[3] >= 0) & (gates[3] <= 1))


def test_folding_equals_the_network_with_constant_gates():
    """Both block layouts fold exactly: into the batch norm before the unit (expanding block 3) and into the
    projection after it (block 1, whose hidden width equals its input)."""
    net = _net()
    gates = mean_gates(net, _crops(1))
    folded = fold_se(net, gates)
    assert all(row[3] == 0 for row in folded.spec.arch["blocks"])
    assert not any(isinstance(m, SqueezeExcite) for m in folded.modules())
    assert [row[3] for row in net.spec.arch["blocks"]] == [1, 0, 1, 1]  # the original is untouched
    for i, g in gates.items():
        layers = net.backbone.features[i].conv
        k = next(j for j, m in enumerate(layers) if isinstance(m, SqueezeExcite))
        layers[k] = _ConstantGate(g)
    with torch.no_grad():
        for z, x in _crops(2):
            want, got = net.search(x, *net.template(z)), folded.search(x, *folded.template(z))
            for a, b in zip(want, got):
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_missing_gates_and_no_crops_are_errors():
    net = _net()
    with pytest.raises(SpecError, match="mean gate"):
        fold_se(net, {1: torch.ones(8)})
    with pytest.raises(SpecError, match="no crops"):
        mean_gates(net, [])


def test_training_folds_a_previous_stage_and_resumes_without_units(tmp_path, tiny_checkpoint):
    from edgetrack.training.config import load_config
    from edgetrack.training.distributed import DistInfo
    from edgetrack.training.loader import make_loader_factory
    from edgetrack.training.trainer import TrainConfig, Trainer

    def config(out, steps, **extra):
        overrides = [f"teacher={tiny_checkpoint}", f"out={tmp_path / out}", f"steps={steps}", "checkpoint_every=2",
                     "log_every=1", "threads=1", "data.synthetic=2", "data.batch_size=2", "data.workers=0",
                     "data.samples_per_epoch=6", "optim.warmup_steps=1", "students=fast", "prune.calib_batches=1",
                     "objective.mode=mimic", "prune.fast.drop_blocks=3", "prune.fast.tower_depth=0",
                     *[f"{k}={v}" for k, v in extra.items()]]
        return load_config(TrainConfig, None, overrides)

    first = config("stage1", 2)
    Trainer(first, make_loader_factory(first, DistInfo())).run()
    second = config("folded", 2, init_run=str(tmp_path / "stage1"), fold_se="fast")
    trainer = Trainer(second, make_loader_factory(second, DistInfo()))
    assert not any(isinstance(m, SqueezeExcite) for m in trainer.students["fast"].modules())
    result = trainer.run()
    assert np.isfinite(result["fast/total"])
    longer = config("folded", 4, init_run=str(tmp_path / "stage1"), fold_se="fast")
    resumed = Trainer(longer, make_loader_factory(longer, DistInfo()))
    assert resumed.step == 2 and resumed.run()["steps"] == 4
    bad = config("bad", 1, init_run=str(tmp_path / "stage1"), fold_se="accurate")
    with pytest.raises(InputError, match="fold_se names 'accurate'"):
        Trainer(bad, make_loader_factory(bad, DistInfo()))
