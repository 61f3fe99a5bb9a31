"""The dull student's policy search (TSsKD 3.2 after N2N): layers, actions, REINFORCE, rewards, caching, resume,
the CLI and training the found student from its spec."""
import json

import pytest

torch = pytest.importorskip("torch")

from conftest import TINY_ARCH  # noqa: E402

from edgetrack.training.n2n import (  # noqa: E402
    RATIOS,
    N2NConfig,
    Policy,
    cut_from_actions,
    layer_features,
    search,
    teacher_layers,
)
from edgetrack.training.n2n_eval import proposal_iou_sum, reward  # noqa: E402


def test_layers_actions_and_cut():
    layers = teacher_layers(TINY_ARCH)
    # block 0 keeps hidden == input (no expansion); blocks 1-3 expand; one layer per tower
    assert [(x["kind"], x["index"]) for x in layers] == [("block", 1), ("block", 2), ("block", 3), ("cls", 0),
                                                           ("reg", 0)]
    assert RATIOS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    cut = cut_from_actions(TINY_ARCH, layers, [0, 4, 9, 2, 1])
    assert cut["hidden_ratios"] == [1.0, 0.1, 0.5, 1.0] and cut["cls_ratios"] == [0.3]
    assert cut["reg_ratios"] == [0.2] and cut["drop_blocks"] == []
    assert layer_features(layers).shape == (5, 7)


def test_reward_eq6_and_accuracy_eq7():
    assert reward(0.0, 1.0) == 0.0 and reward(1.0, 0.5) == 0.5 and reward(0.5, 1.0) == 0.75
    assert reward(-0.3, 1.0) == 0.0  # larger than the teacher
    cls = torch.zeros(1, 2, 2, 2)
    cls[0, 1, 0, 0] = 5.0  # the best proposal is at point (0, 0)
    reg = torch.full((1, 4, 2, 2), 5.0)  # 10x10 boxes around each point
    points = torch.tensor([[[0.0, 20.0], [0.0, 20.0]], [[0.0, 0.0], [20.0, 20.0]]]).numpy()
    boxes = torch.tensor([[-5.0, -5.0, 5.0, 5.0]])
    assert proposal_iou_sum(cls, reg, boxes, points, top_n=1) == pytest.approx(1.0)
    assert proposal_iou_sum(cls, reg, boxes, points, top_n=4) == pytest.approx(1.0)  # the others do not overlap


def test_policy_learns_toward_higher_reward_and_resumes(tmp_path):
    layers = teacher_layers(TINY_ARCH)
    calls = []

    def evaluate(cut):  # a reward that prefers the smallest ratios everywhere
        calls.append(cut)
        return {"reward": 1.0 - sum(cut["hidden_ratios"][1:] + cut["cls_ratios"] + cut["reg_ratios"]) / 5}

    cfg = N2NConfig(steps=30, candidates=3, lr=0.05, seed=0)
    result = search(evaluate, tmp_path / "a", cfg, arch=TINY_ARCH, progress=False)
    history = [json.loads(x) for x in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 30 and len(calls) == 90 and all(len(h["candidates"]) == 3 for h in history)
    first = sum(h["mean_reward"] for h in history[:5]) / 5
    last = sum(h["mean_reward"] for h in history[-5:]) / 5
    assert last > first
    spec = json.loads((tmp_path / "a" / "student_spec.json").read_text())
    assert spec["name"] == "dull" and spec["reward"] == result["best"]["reward"]
    # resume: a search killed after 10 steps and restarted ends exactly like the uninterrupted one
    search(evaluate, tmp_path / "b", N2NConfig(steps=10, candidates=3, lr=0.05, seed=0), arch=TINY_ARCH,
           progress=False)
    search(evaluate, tmp_path / "b", cfg, arch=TINY_ARCH, progress=False)
    resumed = [json.loads(x) for x in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert [h["candidates"][0]["actions"] for h in resumed] == [h["candidates"][0]["actions"] for h in history]
    assert Policy(7).greedy(layer_features(layers)).__len__() == len(layers)
    # resume=False (edgetrack-train search --no-resume): the policy and history start over
    search(evaluate, tmp_path / "b", N2NConfig(steps=2, candidates=3, lr=0.05, seed=0, resume=False),
           arch=TINY_ARCH, progress=False)
    fresh = [json.loads(x) for x in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in fresh] == [1, 2]
    assert [h["candidates"][0]["actions"] for h in fresh] == [h["candidates"][0]["actions"] for h in history[:2]]
    assert torch.load(tmp_path / "b" / "policy.pt", weights_only=False)["step"] == 2


def test_search_cli_scores_caches_and_the_spec_trains(tmp_path, tiny_checkpoint):
    from edgetrack.training.cli import main

    out = tmp_path / "search"
    args = ["search", "--teacher", str(tiny_checkpoint), "--synthetic", "2", "--out", str(out), "--steps", "1",
            "--candidates", "2", "--proxy-steps", "2", "--val-pairs", "4", "--set", "threads=1",
            "--set", "data.batch_size=2", "--set", "data.workers=0", "--set", "data.samples_per_epoch=8"]
    assert main(args) == 0
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    cands = history[0]["candidates"]
    assert len(cands) == 2 and all(0.0 <= c["reward"] and c["params"] > 0 and c["acc"] >= 0 for c in cands)
    assert len(list((out / "candidates").glob("*/result.json"))) == len({json.dumps(c["cut"]) for c in cands})
    assert json.loads((out / "teacher.json").read_text())["acc"] > 0
    assert main(args[:8] + ["2"] + args[9:]) == 0  # one more policy step, the first one's results kept
    assert len((out / "history.jsonl").read_text().splitlines()) == 2
    from edgetrack.training.config import load_config
    from edgetrack.training.n2n_eval import CandidateEvaluator, EvalConfig
    from edgetrack.training.trainer import TrainConfig

    base = load_config(TrainConfig, None, [f"teacher={tiny_checkpoint}", "data.synthetic=2", "threads=1",
                                           "data.batch_size=2", "data.workers=0", "data.samples_per_epoch=8"])
    timed = CandidateEvaluator(base, out, EvalConfig(proxy_steps=1, val_pairs=4, reward="latency", latency_runs=3))
    rec = timed(cands[0]["cut"])
    assert rec["latency_ms"] > 0
    assert rec["compression"] == pytest.approx(1 - rec["latency_ms"] / timed.ref["latency_ms"])
    run = tmp_path / "run"
    assert main(["distill", "--teacher", str(tiny_checkpoint), "--synthetic", "2", "--out", str(run), "--steps",
                 "2", "--students", "intelligent", "--student-spec", str(out / "student_spec.json"),
                 "--set", "threads=1", "--set", "data.batch_size=2", "--set", "data.workers=0",
                 "--set", "data.samples_per_epoch=8", "--set", "optim.warmup_steps=0"]) == 0
    from edgetrack.models.io import load_checkpoint

    dull = load_checkpoint(run / "student_dull.safetensors")
    assert sum(p.numel() for p in dull.parameters()) == cands[0]["params"] or \
        sum(p.numel() for p in dull.parameters()) in {c["params"] for c in history[1]["candidates"] + cands}
