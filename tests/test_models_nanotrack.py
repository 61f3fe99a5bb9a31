"""NanoTrack network, importer fidelity against the authors' ONNX files, checkpoint fit checks."""
import numpy as np
import pytest
from conftest import shared_path, tiny_spec

torch = pytest.importorskip("torch")

from edgetrack.errors import ModelError, SpecError  # noqa: E402
from edgetrack.models import build_model  # noqa: E402
from edgetrack.models.io import check_output_shapes, load_checkpoint, model_from_arrays, save_checkpoint  # noqa: E402
from edgetrack.models.nanotrack import depthwise_corr, pixelwise_corr  # noqa: E402
from edgetrack.presets import nanotrack_spec  # noqa: E402

ONNX_NAMES = {1: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
              2: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
              3: ("nanotrack_backbone.onnx", "nanotrack_head.onnx")}


def _real_crops():
    """A template and a search crop cut from a real sequence by edgetrack's own crop code."""
    import cv2

    from edgetrack.geometry import context_size, crop_square, xywh_to_cxcywh

    seq = shared_path("data", "dev-sequences", "uav123_10fps_car10")
    frame = cv2.imread(str(seq / "img" / "0001.jpg"))
    box = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0]
    cx, cy, w, h = xywh_to_cxcywh(box)
    s_z = context_size(w, h, 0.5)
    fill = cv2.mean(frame)[:3]
    z = crop_square(frame, (cx, cy), round(s_z), 127, fill)
    x = crop_square(frame, (cx + 7, cy - 5), round(s_z * 255 / 127), 255, fill)
    to = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1)[None].astype(np.float32))  # noqa: E731
    return to(z), to(x)


def _run_backbone_at(path, z):
    """Run the authors' backbone graph on a 127x127 template (its input is declared 255x255, so relax it)."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    model = onnx.load(str(path))
    for dim in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_param = "side"
    del model.graph.value_info[:]
    for out in model.graph.output:
        for dim in out.type.tensor_type.shape.dim[2:]:
            dim.dim_param = "feat"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: z})[0]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_import_matches_authors_onnx(version):
    ort = pytest.importorskip("onnxruntime")
    from edgetrack.models.import_nanotrack import import_nanotrack

    folder = shared_path("weights", "nanotrack", f"nanotrackv{version}")
    net = import_nanotrack(folder / f"nanotrackv{version}.pth")
    assert net.spec.name == f"nanotrack-v{version}"
    backbone = ort.InferenceSession(str(folder / ONNX_NAMES[version][0]), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(folder / ONNX_NAMES[version][1]), providers=["CPUExecutionProvider"])
    z, x = _real_crops()
    xf_ref = backbone.run(None, {backbone.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        zf = net.template(torch.from_numpy(z))[0]
        xf = net.backbone(torch.from_numpy(x)).numpy()
        cls_ours, reg_ours = net.search(torch.from_numpy(x), zf)
        cls, reg = net.ban_head(zf, torch.from_numpy(xf_ref))
    # template and search features: same crops in, same features out
    assert np.abs(xf - xf_ref).max() <= 1e-4
    zf_ref = _run_backbone_at(folder / ONNX_NAMES[version][0], z)
    assert zf_ref.shape == zf.shape and np.abs(zf.numpy() - zf_ref).max() <= 1e-4
    names = [i.name for i in head.get_inputs()]
    cls_ref, reg_ref = head.run(None, {names[0]: zf.numpy(), names[1]: xf_ref})
    # head outputs on the same features
    assert cls.shape == cls_ref.shape and reg.shape == reg_ref.shape
    assert np.abs(cls.numpy() - cls_ref).max() <= 1e-4
    assert np.abs(reg.numpy() - reg_ref).max() <= 1e-4
    # end to end from the crops: reg is exp() of the head's output, in pixels (up to ~70 here), so float32
    # noise of the two backbones grows with it (and varies with the thread split); relative agreement stays
    # at the 1e-5 level, checked at 3e-5.
    assert np.abs(cls_ours.numpy() - cls_ref).max() <= 1e-4
    assert (np.abs(reg_ours.numpy() - reg_ref) / np.maximum(reg_ref, 1.0)).max() <= 3e-5


def test_import_rejects_wrong_files(tmp_path):
    from edgetrack.models.import_nanotrack import import_nanotrack

    with pytest.raises(ModelError, match="not found"):
        import_nanotrack(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot read"):
        import_nanotrack(junk)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(ModelError, match="does not look like NanoTrack"):
        import_nanotrack(other)


@pytest.mark.parametrize("version, size", [(1, 16), (2, 16), (3, 15)])
def test_teacher_shapes(version, size):
    net = build_model(nanotrack_spec(version)).eval()
    check_output_shapes(net)
    with torch.no_grad():
        zf = net.template(torch.zeros(2, 3, 127, 127))
        cls, reg = net.search(torch.zeros(2, 3, 255, 255), *zf)
    assert zf[0].shape[-1] == 8 and cls.shape == (2, 2, size, size) and reg.shape == (2, 4, size, size)


def test_correlations_match_references():
    g = torch.Generator().manual_seed(1)
    zf, xf = torch.randn(2, 5, 3, 3, generator=g), torch.randn(2, 5, 6, 6, generator=g)
    pw = pixelwise_corr(zf, xf)
    ref = torch.einsum("bcp,bcq->bpq", zf.flatten(2), xf.flatten(2)).reshape(2, 9, 6, 6)
    assert torch.allclose(pw, ref, atol=1e-5)
    dw = depthwise_corr(zf, xf, pad=1)
    ref = torch.cat([torch.nn.functional.conv2d(xf[i:i + 1], zf[i].unsqueeze(1), padding=1, groups=5)
                     for i in range(2)])
    assert torch.allclose(dw, ref, atol=1e-5)


def test_checkpoint_roundtrip_and_misfit(tmp_path):
    net = build_model(tiny_spec()).eval()
    path = save_checkpoint(net, tmp_path / "tiny.safetensors")
    again = load_checkpoint(path)
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items()):
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(a, b), k
    arrays = {k: v.numpy() for k, v in net.state_dict().items()}
    arrays["ban_head.cls_logits.0.weight"] = np.zeros((2, 3, 1, 1), np.float32)
    with pytest.raises(ModelError, match="wrong shape"):
        model_from_arrays(net.spec, arrays)
    arrays.pop("ban_head.cls_logits.0.weight")
    with pytest.raises(ModelError, match="missing"):
        model_from_arrays(net.spec, arrays)


def test_spec_that_does_not_fit_network():
    net = build_model(tiny_spec(score_size=15)).eval()
    with pytest.raises(SpecError, match="score_size"):
        check_output_shapes(net)
