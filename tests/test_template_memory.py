"""The vit family's condensed template memory: condensing, the per-target policy, the spec's constants, and the
runtime on a tiny ViT (budget kept, most attended tokens kept, per target, off when off, backends agree)."""
from __future__ import annotations

import numpy as np
import pytest
from test_models_vit import tiny_net, tiny_vit_spec, torch  # noqa: F401 (fixtures)

from edgetrack.errors import ModelError, SpecError
from edgetrack.runtime.confidence import State
from edgetrack.runtime.template_memory import MemoryPolicy, TemplateMemory, condense

SURE = {"features": ["peak"], "weights": [0.0], "bias": 10.0}  # every update TRACKING at confidence ~1
NZ = 16  # one tiny template's tokens (32 px template, stride 8)


def tiny_spec(**memory):
    return tiny_vit_spec(lost_threshold=0.0, calibration=SURE, **memory)


MEMORY = dict(memory_tokens=24, memory_every=2, memory_confidence=0.5, memory_protected=0.25)


@pytest.fixture(scope="module")
def weights(tiny_net):  # noqa: F811 (the imported fixture)
    return tiny_net.state_dict()


def checkpoint(weights, folder, **memory):
    """A tiny ViT checkpoint with the shared weights and ``memory`` constants in its spec."""
    from edgetrack.models import build_model
    from edgetrack.models.io import save_checkpoint

    net = build_model(tiny_spec(**memory)).eval()
    net.load_state_dict(weights)
    return save_checkpoint(net, folder / "vit.safetensors")


@pytest.fixture(scope="module")
def clip():
    """A bright square drifting over a noisy background: 12 frames of 120x160."""
    rng = np.random.default_rng(1)
    frames = []
    for i in range(12):
        frame = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
        frame[40 + i:64 + i, 60 + 2 * i:90 + 2 * i] = (200, 180, 40)
        frames.append(frame)
    return frames, (60.0, 40.0, 30.0, 24.0)


def track(tracker, clip, every_frame=None):
    frames, box = clip
    tracker.init(frames[0], box)
    boxes = []
    for frame in frames[1:]:
        boxes.append(tracker.update(frame).box)
        if every_frame is not None:
            every_frame(tracker._target)
    return np.array(boxes)


class TestCondense:
    def test_keeps_the_most_attended_within_the_budget(self):
        attention = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.7])
        keep = condense(attention, np.zeros(6, bool), budget=3, protected=0)
        assert keep.tolist() == [1, 3, 5]

    def test_protected_initial_tokens_stay(self):
        attention = np.array([0.01, 0.02, 0.9, 0.8, 0.7, 0.6])
        initial = np.array([True, True, False, False, False, False])
        keep = condense(attention, initial, budget=3, protected=1)
        assert keep.tolist() == [1, 2, 3]  # the better initial token, then the two most attended others

    def test_under_budget_keeps_everything(self):
        assert condense(np.ones(4), np.ones(4, bool), budget=8, protected=2).tolist() == [0, 1, 2, 3]


class TestPolicy:
    def test_takes_only_due_confident_tracking_updates(self):
        policy = MemoryPolicy(tiny_spec(**MEMORY))
        memory = policy.start(np.zeros((1, NZ, 4), np.float32))
        assert not policy.wants(memory, State.TRACKING, 0.9)  # age 1 < every 2
        assert not policy.wants(memory, State.UNCERTAIN, 0.9)
        memory.age = 5
        assert not policy.wants(memory, State.TRACKING, 0.4)  # below memory_confidence
        assert policy.wants(memory, State.TRACKING, 0.9)

    def test_absorb_condenses_pending_tokens_to_the_budget(self):
        policy = MemoryPolicy(tiny_spec(**MEMORY))
        memory = policy.start(np.arange(NZ, dtype=np.float32).reshape(1, NZ, 1))
        policy.take(memory, 100 + np.arange(NZ, dtype=np.float32).reshape(1, NZ, 1))
        assert memory.search_tokens().shape == (1, 2 * NZ, 1)
        attention = np.r_[np.linspace(0, 0.1, NZ), np.linspace(1, 2, NZ)]  # the new tokens attended most
        policy.absorb(memory, attention)
        assert memory.pending is None and memory.tokens.shape == (1, 24, 1)
        assert policy.protected == 6  # round(0.25 * 24) places kept for the initial template's tokens
        # the 6 protected (initial 10..15), then the 18 most attended of the rest: all 16 new ones and initial 8, 9
        assert memory.tokens[0, :, 0].tolist() == [*range(8, 16), *range(100, 116)]
        assert int(memory.initial.sum()) == 8

    def test_attention_of_another_size_is_a_model_error(self):
        policy = MemoryPolicy(tiny_spec(**MEMORY))
        memory = TemplateMemory(np.zeros((1, NZ, 2)), np.ones(NZ, bool), pending=np.zeros((1, NZ, 2)))
        with pytest.raises(ModelError, match="attn"):
            policy.absorb(memory, np.zeros(NZ))


class TestSpec:
    def test_off_by_default(self):
        assert tiny_spec().memory_tokens == 0

    @pytest.mark.parametrize("change, match", [
        (dict(memory_tokens=8), "at least one template"), (dict(memory_tokens=-1), "memory_tokens"),
        (dict(memory_tokens=True), "memory_tokens"), (dict(memory_every=0), "memory_every"),
        (dict(memory_confidence=1.5), "memory_confidence"), (dict(memory_protected=float("nan")), "protected")])
    def test_bad_constants(self, change, match):
        with pytest.raises(SpecError, match=match):
            tiny_spec(**change)

    def test_vit_family_only(self):
        from edgetrack.spec import TrackerSpec

        with pytest.raises(SpecError, match="vit family"):
            TrackerSpec(family="nanotrack", memory_tokens=64)


class TestRuntime:
    def test_budget_is_never_exceeded_and_templates_are_taken(self, weights, clip, tmp_path):
        from edgetrack import Tracker

        seen = []
        tracker = Tracker(checkpoint(weights, tmp_path, **MEMORY), backend="torch")
        track(tracker, clip, lambda st: seen.append((st.memory.tokens.shape[1], st.zfs[0].shape[1])))
        assert max(m for m, _ in seen) <= 24 and max(s for _, s in seen) <= 24 + NZ
        assert tracker._target.memory.taken >= 4 and any(m == 24 for m, _ in seen)
        assert int(tracker._target.memory.initial.sum()) >= 6  # the protected share

    def test_keeps_the_tokens_the_search_attends_to_most(self, weights, clip, tmp_path):
        from edgetrack import Tracker

        tracker = Tracker(checkpoint(weights, tmp_path, **{**MEMORY, "memory_protected": 0.0}), backend="torch")
        calls = []
        run_search = tracker.backend.run_search

        def spy(x, zfs):
            outs = run_search(x, zfs)
            calls.append((zfs[0].copy(), outs[3][0].copy()))
            return outs

        tracker.backend.run_search = spy
        checked = []

        def check(st):
            tokens, attention = calls[-1]
            if tokens.shape[1] > 24:  # this search condensed memory + a new template
                top = np.sort(np.argsort(-attention, kind="stable")[:24])
                np.testing.assert_array_equal(st.memory.tokens, tokens[:, top])
                checked.append(True)

        track(tracker, clip, check)
        assert checked

    def test_off_when_the_spec_says_off(self, weights, clip, tmp_path):
        from edgetrack import Tracker

        tracker = Tracker(checkpoint(weights, tmp_path), backend="torch")
        track(tracker, clip)
        assert tracker._session.memory is None and tracker._target.memory is None
        assert len(tracker.backend.run_search(np.zeros((1, 3, 64, 64), np.float32), tracker._target.zfs)) == 3

    def test_memory_that_never_takes_gives_the_boxes_of_memory_off(self, weights, clip, tmp_path):
        """With the attention output on but no template ever taken, the boxes are those of memory off."""
        from edgetrack import Tracker

        for name in ("off", "never"):
            (tmp_path / name).mkdir()
        off = track(Tracker(checkpoint(weights, tmp_path / "off"), backend="torch"), clip)
        never = Tracker(checkpoint(weights, tmp_path / "never", **{**MEMORY, "memory_every": 1000}), backend="torch")
        np.testing.assert_array_equal(track(never, clip), off)
        assert never._target.memory.taken == 0

    def test_memory_is_per_target(self, weights, clip, tmp_path):
        from edgetrack import MultiTracker

        frames, box = clip
        multi = MultiTracker(checkpoint(weights, tmp_path, **MEMORY), backend="torch")
        first = multi.add(frames[0], box)
        for frame in frames[1:4]:
            multi.update(frame)
        second = multi.add(frames[3], (10.0, 10.0, 20.0, 20.0))  # its memory lags: searches of other sizes
        for frame in frames[4:]:
            multi.update(frame)
        a, b = multi._targets[first].memory, multi._targets[second].memory
        assert a is not b and a.taken > b.taken >= 1
        assert not np.array_equal(a.tokens, b.tokens)

    def test_onnxruntime_agrees_with_torch(self, weights, clip, tmp_path):
        pytest.importorskip("onnxruntime")
        from edgetrack import Tracker
        from edgetrack.export import export_onnx
        from edgetrack.models.io import load_checkpoint

        ckpt = checkpoint(weights, tmp_path, **MEMORY)
        result = export_onnx(load_checkpoint(ckpt), tmp_path / "onnx")
        assert max(result.max_rel_diff.values()) < 1e-4 and "attn" in result.max_rel_diff
        ref = Tracker(ckpt, backend="torch")
        ort = Tracker(tmp_path / "onnx", backend="onnxruntime", allow_ungated=True)
        np.testing.assert_allclose(track(ort, clip), track(ref, clip), atol=1e-2)
        assert ort._target.memory.taken == ref._target.memory.taken >= 4
        np.testing.assert_allclose(ort._target.memory.tokens, ref._target.memory.tokens, atol=1e-4)

    def test_graphs_without_the_attention_output_are_refused(self, weights, tmp_path):
        pytest.importorskip("onnxruntime")
        from edgetrack import Tracker
        from edgetrack.export import export_onnx
        from edgetrack.models.io import load_checkpoint
        from edgetrack.runtime.spec_files import write_spec

        export_onnx(load_checkpoint(checkpoint(weights, tmp_path)), tmp_path / "onnx")  # memory off: 3 outputs
        write_spec(tmp_path / "onnx", **MEMORY)
        with pytest.raises(ModelError, match="attn"):
            Tracker(tmp_path / "onnx", backend="onnxruntime", allow_ungated=True)


@pytest.mark.parametrize("fmt, flags", [("onnx", []), ("onnx", ["--int8"]), ("openvino", ["--fp16"])])
def test_export_pipeline_keeps_the_memory(weights, clip, tiny_dataset, tmp_path, monkeypatch, fmt, flags):
    """edgetrack-export (gate included) with the memory on: the attn output and any token count survive."""
    pytest.importorskip("onnx")
    if fmt == "openvino":
        pytest.importorskip("openvino")
    import json

    from edgetrack import Tracker
    from edgetrack.export.cli import main as export_main

    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = export_main([str(checkpoint(weights, tmp_path, **MEMORY)), "--format", fmt, *flags, "--data",
                        str(tiny_dataset), "--calib-pairs", "8", "--val-data", str(tiny_dataset), "--val-frames", "6",
                        "--max-drop", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    assert json.loads((out / "export.json").read_text())["status"] == "ok"
    tracker = Tracker(out, backend="openvino" if fmt == "openvino" else "onnxruntime")
    track(tracker, clip)  # (the export re-fits the calibration: whether templates are taken depends on it)
    assert tracker._session.memory is not None and tracker._target.memory.tokens.shape[1] <= 24
    tokens = np.concatenate([tracker._target.memory.tokens] * 3, axis=1)[:, :24 + NZ]
    outs = tracker.backend.run_search(np.zeros((1, 3, 64, 64), np.float32), [tokens])
    assert len(outs) == 4 and outs[3].shape == (1, 24 + NZ)


def test_tensorrt_profile_covers_the_memory_tokens(weights, tmp_path):
    """The engine profile of a memory search graph spans one template's tokens to budget + one template (the
    profile is built here without TensorRT; engines themselves are not built on this machine)."""
    pytest.importorskip("onnx")
    import types

    from edgetrack.export import export_onnx
    from edgetrack.models.io import load_checkpoint
    from edgetrack.runtime.backends._trt_build import _profile

    export_onnx(load_checkpoint(checkpoint(weights, tmp_path, **MEMORY)), tmp_path / "onnx")
    inputs = [types.SimpleNamespace(name="x", shape=(-1, 3, 64, 64)), types.SimpleNamespace(name="zt",
                                                                                             shape=(-1, -1, 16))]
    network = types.SimpleNamespace(num_inputs=2, get_input=inputs.__getitem__)
    shapes = {}
    builder = types.SimpleNamespace(create_optimization_profile=lambda: types.SimpleNamespace(
        set_shape=lambda name, lo, opt, hi: shapes.__setitem__(name, (lo, opt, hi))))
    assert _profile(builder, network, 4, tmp_path / "onnx" / "search.onnx") is not None
    assert shapes["x"] == ((1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64))
    assert shapes["zt"] == ((1, NZ, 16), (1, 24, 16), (4, 24 + NZ, 16))
