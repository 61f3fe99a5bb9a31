import json

import numpy as np
import pytest

from edgetrack.training.nas import Controller, Evaluation, NASConfig, reward, search
from edgetrack.training.search_space import SearchSpace


def test_reward_penalises_latency_over_target():
    cfg = NASConfig(latency_target_ms=1.0, latency_weight=0.5)
    assert reward(Evaluation(0.6, 0.5), cfg) == pytest.approx(0.6)
    assert reward(Evaluation(0.6, 2.0), cfg) < 0.6


def test_decode_every_choice_is_valid():
    space = SearchSpace()
    arch = space.decode(tuple(len(d) - 1 for d in space.decisions))
    assert arch["stem"][0] == "conv" and arch["tower_style"] == "dense"
    with pytest.raises(ValueError):
        space.decode((0,))


def test_controller_learns_the_best_choice_and_resumes(tmp_path):
    space = SearchSpace()

    def evaluate(arch):  # wider first block and one tower layer is "best"; no training needed
        acc = arch["stem"][2] / 24 + (1.0 if len(arch["cls_tower"]) == 1 else 0.0)
        return Evaluation(acc, 0.5)

    cfg = NASConfig(episodes=60, lr=0.5, seed=1)
    first = search(evaluate, tmp_path, NASConfig(episodes=30, lr=0.5, seed=1), space, progress=False)
    assert first["episodes"] == 30
    result = search(evaluate, tmp_path, cfg, space, progress=False)  # resumes: 30 more
    assert result["episodes"] == 60
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 60
    assert result["policy_best_arch"]["stem"][2] == 24 and len(result["policy_best_arch"]["cls_tower"]) == 1
    assert json.loads((tmp_path / "best.json").read_text())["episodes"] == 60


def test_controller_update_direction():
    ctrl = Controller(SearchSpace(), seed=0)
    choice = tuple(0 for _ in ctrl.logits)
    before = ctrl.probs()[0][0]
    ctrl.update(choice, advantage=1.0, lr=1.0)
    assert ctrl.probs()[0][0] > before


def test_measured_latency_runs_the_exported_graph():
    pytest.importorskip("onnx")
    from edgetrack.presets import nanotrack_spec
    from edgetrack.training.nas import onnx_latency_ms

    small = nanotrack_spec(2, arch=SearchSpace().decode((0, 0, 0, 0, 0, 0, 0)))
    latency = onnx_latency_ms(small, runs=5, warmup=1)
    assert np.isfinite(latency) and latency > 0
