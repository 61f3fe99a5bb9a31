"""The one-stream ViT family: the network's two graphs, the VitTrack import and its fidelity to the zoo graph,
the centre-head decoding, and ONNX export."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from edgetrack.errors import ModelError, ModelNotFoundError, SpecError
from edgetrack.models.vit_spec import vit_spec
from edgetrack.runtime import centre_head as ch

TINY_VIT = dict(width=16, depth=2, heads=2, mlp_ratio=2, embed_channels=[4, 8, 16], head_channels=[8, 4])
ZOO = ("weights", "vittrack", "object_tracking_vittrack_2023sep.onnx")


def tiny_vit_spec(**overrides):
    return vit_spec(dict(TINY_VIT), exemplar_size=32, instance_size=64, name="tiny-vit", **overrides)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_net(torch):
    from edgetrack.models import build_model

    torch.manual_seed(0)
    return build_model(tiny_vit_spec()).eval()


@pytest.fixture(scope="module")
def zoo_model(torch):
    pytest.importorskip("onnx")
    from edgetrack.models.import_vittrack import import_vittrack

    return import_vittrack(shared_path(*ZOO))


class TestSpec:
    def test_grids_follow_the_arch(self):
        spec = tiny_vit_spec()
        assert (spec.family, spec.stride, spec.score_size, spec.template_feat_size) == ("vit", 8, 8, 4)

    def test_template_factor_must_not_be_negative(self):
        with pytest.raises(SpecError, match="template_factor"):
            tiny_vit_spec(template_factor=-1.0)

    def test_crop_sides(self):
        spec = tiny_vit_spec()
        assert ch.template_side(spec, 40, 10) == pytest.approx(40.0)  # 2 * sqrt(400)
        assert ch.search_side(spec, 40, 10) == pytest.approx(80.0)
        siam = spec.with_(template_factor=0.0, context_amount=0.5)
        assert ch.template_side(siam, 40, 10) == pytest.approx(np.sqrt(65 * 35))


class TestNetwork:
    def test_graph_shapes(self, tiny_net, torch):
        z, x = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 64, 64)
        with torch.no_grad():
            (zt,) = tiny_net.template(z)
            score, size, offset = tiny_net.search(x, zt)
        assert zt.shape == (2, 16, 16)
        assert score.shape == (2, 1, 8, 8) and size.shape == (2, 2, 8, 8) and offset.shape == (2, 2, 8, 8)
        assert float(score.min()) > 0 and float(score.max()) < 1 and float(size.min()) > 0

    def test_last_block_on_search_tokens_only_changes_nothing(self, tiny_net, torch):
        """The last block computes only the search tokens: the same as running it on every token."""
        z, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            (zt,) = tiny_net.template(z)
            t = torch.cat([zt, tiny_net.patch_embed(x) + tiny_net.pos_embed_x], dim=1)
            for block in tiny_net.blocks:
                t = block(t)
            full = tiny_net.head(tiny_net.norm(t))
            ours = tiny_net.search(x, zt)
        for a, b in zip(full, ours):
            assert float((a - b).abs().max()) < 1e-5

    def test_forward_train_gives_every_block(self, tiny_net, torch):
        outs, feats = tiny_net.forward_train(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64))
        assert len(feats["blocks"]) == 2 and feats["blocks"][0].shape == (1, 16 + 64, 16)
        assert feats["blocks"][-1].shape == (1, 64, 16) and len(outs) == 3

    def test_arch_that_does_not_fit_the_stride(self, torch):
        from edgetrack.models import build_model

        with pytest.raises(SpecError, match="embed_channels"):
            build_model(tiny_vit_spec().with_(stride=16))

    def test_checkpoint_round_trip(self, tiny_net, tmp_path, torch):
        from edgetrack.models.io import load_checkpoint, save_checkpoint

        path = save_checkpoint(tiny_net, tmp_path / "v.safetensors")
        again = load_checkpoint(path)
        z, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(tiny_net(z, x), again(z, x)))


class TestImport:
    def test_spec_of_the_zoo_model(self, zoo_model):
        spec = zoo_model.spec
        assert spec.arch == dict(width=48, depth=3, heads=1, mlp_ratio=4, embed_channels=[6, 12, 24, 48],
                                 head_channels=[32, 16, 8, 4])
        assert (spec.exemplar_size, spec.instance_size, spec.score_size) == (128, 256, 16)

    def test_outputs_equal_the_zoo_graph_on_real_crops(self, zoo_model, torch):
        """Fidelity: template and search crops of a real sequence, cut as the runtime cuts them."""
        from edgetrack.data import open_dataset
        from edgetrack.geometry import padding_colour, to_network_input, xywh_to_cxcywh
        from edgetrack.models.import_vittrack import onnx_outputs

        seq = open_dataset(shared_path("data", "dev-sequences"), "folder")[0]
        from edgetrack.runtime.target import CentreSearch

        search = CentreSearch(zoo_model.spec)
        spec = zoo_model.spec
        first, later = seq.frame(0), seq.frame(min(5, len(seq) - 1))
        cx, cy, w, h = xywh_to_cxcywh(seq.init_box)
        fill = padding_colour(first)
        z = search.template_crop(first, cx, cy, w, h, fill)

        class State:
            pass

        st = State()
        st.cx, st.cy, st.w, st.h, st.fill = cx, cy, w, h, fill
        x = search.crops(later, st)
        zn = to_network_input(z[None], spec.mean, spec.std, False)
        xn = to_network_input(x, spec.mean, spec.std, False)
        with torch.no_grad():
            ours = zoo_model(torch.from_numpy(zn), torch.from_numpy(xn))
        theirs = onnx_outputs(shared_path(*ZOO), zn, xn)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            assert float(np.abs(a.numpy() - b).max()) <= 1e-4

    def test_cli_writes_a_checkpoint(self, tmp_path, torch):
        pytest.importorskip("onnx")
        from edgetrack.checkpoint import read_spec
        from edgetrack.cli.main import main

        out = tmp_path / "vittrack.safetensors"
        assert main(["import", "vittrack", str(shared_path(*ZOO)), "--out", str(out)]) == 0
        assert read_spec(out).family == "vit"

    def test_not_an_onnx_file(self, tmp_path, torch):
        pytest.importorskip("onnx")
        from edgetrack.models.import_vittrack import import_vittrack

        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"not a model")
        with pytest.raises(ModelError, match="cannot read"):
            import_vittrack(bad)
        with pytest.raises(ModelNotFoundError):
            import_vittrack(tmp_path / "missing.onnx")

    def test_another_graph_is_refused(self, tiny_onnx_graph, torch):
        from edgetrack.models.import_vittrack import import_vittrack

        with pytest.raises(ModelError, match="VitTrack"):
            import_vittrack(tiny_onnx_graph)


@pytest.fixture
def tiny_onnx_graph(tiny_onnx):
    return tiny_onnx / "search.onnx"


def _maps(s=4, best=(1, 2), size=(0.25, 0.5), offset=(0.5, 0.25), peak=0.9):
    score = np.full((1, s, s), 0.1, np.float32)
    score[0, best[0], best[1]] = peak
    sizes = np.empty((2, s, s), np.float32)
    sizes[0], sizes[1] = size
    offsets = np.empty((2, s, s), np.float32)
    offsets[0], offsets[1] = offset
    return score, sizes, offsets


class TestDecoding:
    def test_hann_window_has_no_zero_ends(self):
        win = ch.hann_window(16).reshape(16, 16)
        i = np.arange(16)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * (i + 1) / 17)
        assert np.allclose(win, np.outer(hann, hann)) and win.min() > 0

    def test_best_cell_with_its_offset_and_size(self):
        choice = ch.decode(*_maps(), ch.hann_window(4), 0.0)
        assert (choice.cx, choice.cy) == pytest.approx(((2 + 0.5) / 4, (1 + 0.25) / 4))
        assert (choice.w, choice.h, choice.score) == pytest.approx((0.25, 0.5, 0.9))

    def test_window_multiplies_the_score(self):
        win = ch.hann_window(4)
        choice = ch.decode(*_maps(), win, 1.0)
        assert choice.score == pytest.approx(0.9 * win[1 * 4 + 2])

    def test_state_moves_and_smooths_the_size(self):
        spec = tiny_vit_spec(lr=0.5, lost_threshold=0.2)
        choice = ch.CentreChoice(0.75, 0.5, 0.25, 0.5, 0.9)
        cx, cy, w, h = ch.next_state(100.0, 100.0, 20.0, 20.0, 80, choice, spec, (480, 640, 3))
        assert (cx, cy) == pytest.approx((120.0, 100.0))
        assert (w, h) == pytest.approx((0.5 * 20 + 0.5 * 20, 0.5 * 20 + 0.5 * 40))

    def test_below_the_threshold_the_target_stays(self):
        spec = tiny_vit_spec(lost_threshold=0.5)
        choice = ch.CentreChoice(0.9, 0.9, 0.1, 0.1, 0.3)
        assert ch.next_state(100.0, 90.0, 20.0, 30.0, 80, choice, spec, (480, 640, 3)) == (100.0, 90.0, 20.0, 30.0)


class TestExport:
    def test_onnx_matches_torch(self, tiny_net, tmp_path):
        pytest.importorskip("onnx")
        from edgetrack.export import export_onnx

        result = export_onnx(tiny_net, tmp_path / "onnx")
        assert set(result.max_rel_diff) == {"zt", "score", "size", "offset"}
        assert max(result.max_rel_diff.values()) < 1e-4

    @pytest.mark.parametrize("fmt, flags", [("onnx", ["--int8"]), ("openvino", ["--fp16"]), ("openvino", ["--int8"])])
    def test_export_pipeline_and_gate(self, tiny_net, tiny_dataset, tmp_path, monkeypatch, fmt, flags):
        """edgetrack-export end to end (calibration crops, accuracy gate, export.json) on a tiny ViT."""
        pytest.importorskip("onnx")
        if fmt == "openvino":
            pytest.importorskip("openvino")
            pytest.importorskip("nncf")
        import json

        from edgetrack import Tracker
        from edgetrack.export.cli import main as export_main
        from edgetrack.models.io import save_checkpoint

        monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "cache"))
        ckpt = save_checkpoint(tiny_net, tmp_path / "vit.safetensors")
        out = tmp_path / "out"
        code = export_main([str(ckpt), "--format", fmt, *flags, "--data", str(tiny_dataset), "--calib-pairs", "8",
                            "--val-data", str(tiny_dataset), "--val-frames", "6", "--max-drop", "1", "--out",
                            str(out), "--no-progress"])
        assert code == 0
        report = json.loads((out / "export.json").read_text())
        assert report["status"] == "ok" and report["rows"][0]["export"] == f"{fmt}-{flags[0][2:]}"
        tracker = Tracker(out)
        frame = np.zeros((144, 192, 3), np.uint8)
        tracker.init(frame, (60, 40, 30, 30))
        assert len(tracker.update(frame).box) == 4
