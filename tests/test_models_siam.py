"""SiamFC and SiamRPN networks: shapes, batching, correlation, pysot checkpoints and ONNX export."""
from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgetrack.errors import ModelError, ModelNotFoundError, SpecError
from edgetrack.models import build_model
from edgetrack.models.alexnet import alexnet_feature_size
from edgetrack.models.correlation import (
    xcorr_depthwise,
    xcorr_depthwise_reference,
    xcorr_full,
    xcorr_full_reference,
)
from edgetrack.models.siamfc import SiamFCNet, load_siamfc_state_dict, siamfc_spec
from edgetrack.models.siamrpn import SiamRPNNet, load_pysot_state_dict, siamrpn_spec
from edgetrack.spec import TrackerSpec

SPECS = {
    "siamfc": lambda: siamfc_spec(0.25),
    "siamrpn-dw": lambda: siamrpn_spec(0.25, head="dwxcorr"),
    "siamrpn-up": lambda: siamrpn_spec(0.25, head="upchannel"),
}


def _net(name: str) -> nn.Module:
    torch.manual_seed(0)
    net = build_model(SPECS[name]())
    _randomise_bn(net)
    return net.eval()


def _randomise_bn(net: nn.Module) -> None:
    """Give BatchNorm non-trivial statistics so eval-mode outputs exercise them."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)


def _crops(spec: TrackerSpec, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.rand(batch, 3, spec.exemplar_size, spec.exemplar_size)
    x = torch.rand(batch, 3, spec.instance_size, spec.instance_size)
    return z, x


# ------------------------------------------------------------------------------------------ shapes / batch
@pytest.mark.parametrize("name, template_shapes, output_shapes", [
    ("siamfc", [(2, 64, 6, 6)], [(2, 1, 17, 17)]),
    ("siamrpn-dw", [(2, 64, 4, 4)] * 2, [(2, 10, 21, 21), (2, 20, 21, 21)]),
    ("siamrpn-up", [(2, 640, 4, 4), (2, 1280, 4, 4)], [(2, 10, 19, 19), (2, 20, 19, 19)]),
])
def test_shapes(name, template_shapes, output_shapes):
    net = _net(name)
    z, x = _crops(net.spec, 2)
    with torch.no_grad():
        zfs = net.template(z)
        outs = net.search(x, *zfs)
    assert [tuple(t.shape) for t in zfs] == template_shapes
    assert [tuple(t.shape) for t in outs] == output_shapes
    assert len(zfs) == len(net.template_names) and len(outs) == len(net.output_names)
    assert outs[0].shape[-1] == net.spec.score_size


def test_build_model_types_and_full_width_sizes():
    assert isinstance(build_model(siamfc_spec(0.25)), SiamFCNet)
    assert isinstance(build_model(siamrpn_spec(0.25, head="upchannel")), SiamRPNNet)
    assert alexnet_feature_size(127) == 6 and alexnet_feature_size(255) == 22
    assert (siamfc_spec().score_size, siamrpn_spec().score_size, siamrpn_spec(head="upchannel").score_size) == (
        17, 21, 19)
    assert siamrpn_spec(instance_size=255).score_size == 17
    fc_bn = build_model(siamfc_spec(0.25, arch={"adjust": "bn"})).eval()
    assert fc_bn(*_crops(fc_bn.spec, 1))[0].shape == (1, 1, 17, 17) and "bn_adjust.weight" in fc_bn.state_dict()
    layers = build_model(siamrpn_spec(0.25, arch={"layout": "layers"}))
    assert "backbone.layer5.1.running_var" in layers.state_dict()  # pysot's `alexnet` names


@pytest.mark.parametrize("name", list(SPECS))
def test_batch_of_two_equals_two_singles(name):
    net = _net(name)
    z, x = _crops(net.spec, 2)
    with torch.no_grad():
        both = net(z, x)
        singles = [net(z[i:i + 1], x[i:i + 1]) for i in range(2)]
        broadcast = net.search(x, *net.template(z[:1]))  # one template, two search crops
        first = [net(z[:1], x[i:i + 1]) for i in range(2)]
    for k, out in enumerate(both):
        torch.testing.assert_close(out, torch.cat([s[k] for s in singles]), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(broadcast[k], torch.cat([s[k] for s in first]), atol=1e-4, rtol=1e-4)


def test_spec_errors():
    with pytest.raises(SpecError, match="unknown keys"):
        build_model(siamfc_spec(0.25, arch={"depth": 3}))
    with pytest.raises(SpecError, match="score size"):
        build_model(siamrpn_spec(0.25, score_size=17))
    with pytest.raises(SpecError, match="head"):
        siamrpn_spec(head="mask")
    with pytest.raises(SpecError, match="groups"):
        build_model(siamfc_spec(0.3))  # 28-channel conv1 is fine, 115-channel conv3 is not divisible by 2
    spec = TrackerSpec.from_json(siamrpn_spec(0.25, head="upchannel").to_json())
    assert isinstance(build_model(spec), SiamRPNNet)


# ------------------------------------------------------------------------------------------ correlation
@pytest.mark.parametrize("kernel_batch", [2, 1])
def test_correlation_matches_grouped_conv(kernel_batch):
    torch.manual_seed(1)
    x = torch.randn(2, 16, 22, 22)
    dw_kernel = torch.randn(kernel_batch, 16, 4, 4) * 0.1
    fc_kernel = torch.randn(kernel_batch, 16, 6, 6) * 0.1  # one output channel (SiamFC)
    up_kernel = torch.randn(kernel_batch, 16 * 10, 4, 4) * 0.1  # ten output channels (UP-channel RPN)
    ref = {k.shape: k.expand(2, -1, -1, -1) for k in (dw_kernel, fc_kernel, up_kernel)}
    torch.testing.assert_close(xcorr_depthwise(x, dw_kernel),
                               xcorr_depthwise_reference(x, ref[dw_kernel.shape]), atol=1e-5, rtol=0)
    for kernel in (fc_kernel, up_kernel):
        out = xcorr_full(x, kernel)
        assert out.shape == (2, kernel.shape[1] // 16, 22 - kernel.shape[2] + 1, 22 - kernel.shape[3] + 1)
        torch.testing.assert_close(out, xcorr_full_reference(x, ref[kernel.shape]), atol=1e-5, rtol=0)


def test_correlation_rejects_bad_shapes():
    with pytest.raises(ValueError, match="kernel batch"):
        xcorr_depthwise(torch.zeros(2, 4, 8, 8), torch.zeros(3, 4, 3, 3))
    with pytest.raises(ValueError, match="multiple"):
        xcorr_full(torch.zeros(1, 4, 8, 8), torch.zeros(1, 6, 3, 3))
    with pytest.raises(ValueError, match="larger"):
        xcorr_full(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 4, 4))


# ------------------------------------------------------------------------------------------ checkpoints
def _conv(key, c_out, c_in, k, bias=True):
    return [(f"{key}.weight", (c_out, c_in, k, k))] + ([(f"{key}.bias", (c_out,))] if bias else [])


def _bn(key, c):
    return [(f"{key}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{key}.num_batches_tracked", ())]


def pysot_alexnetlegacy_keys(width):
    """pysot AlexNetLegacy: features.{0,4,8,11,14} conv, features.{1,5,9,12,15} BN; configs [96,256,384,384,256]."""
    c = [3] + [int(n * width) for n in (96, 256, 384, 384, 256)]
    table = []
    for i, (conv, bn, k) in enumerate([(0, 1, 11), (4, 5, 5), (8, 9, 3), (11, 12, 3), (14, 15, 3)]):
        table += _conv(f"backbone.features.{conv}", c[i + 1], c[i], k) + _bn(f"backbone.features.{bn}", c[i + 1])
    return table, c[-1]


def pysot_depthwise_rpn_keys(c, hidden, anchors=5):
    """pysot DepthwiseRPN: cls/loc DepthwiseXCorr (conv_kernel/conv_search: conv3x3 no bias + BN; head)."""
    table = []
    for branch, out in (("cls", 2 * anchors), ("loc", 4 * anchors)):
        p = f"rpn_head.{branch}"
        for part in ("conv_kernel", "conv_search"):
            table += _conv(f"{p}.{part}.0", hidden, c, 3, bias=False) + _bn(f"{p}.{part}.1", hidden)
        table += _conv(f"{p}.head.0", hidden, hidden, 1, bias=False) + _bn(f"{p}.head.1", hidden)
        table += _conv(f"{p}.head.3", out, hidden, 1)
    return table


def pysot_upchannel_rpn_keys(c, anchors=5):
    """pysot UPChannelRPN: template convs to C*2K / C*4K channels, search convs C->C, loc_adjust 4K->4K."""
    return (_conv("rpn_head.template_cls_conv", c * 2 * anchors, c, 3)
            + _conv("rpn_head.template_loc_conv", c * 4 * anchors, c, 3)
            + _conv("rpn_head.search_cls_conv", c, c, 3) + _conv("rpn_head.search_loc_conv", c, c, 3)
            + _conv("rpn_head.loc_adjust", 4 * anchors, 4 * anchors, 1))


def _pysot_table(width, head):
    backbone, c = pysot_alexnetlegacy_keys(width)
    return backbone + (pysot_depthwise_rpn_keys(c, c) if head == "dwxcorr" else pysot_upchannel_rpn_keys(c))


def _random_state(table):
    return {k: (torch.tensor(7) if not shape else torch.randn(shape)) for k, shape in table}


def _save_pysot_snapshot(tmp_path, state):
    path = tmp_path / "checkpoint_e20.pth"
    torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.005, "momentum": 0.9, "params": [0, 1]}]}},
               path)
    return path


@pytest.mark.parametrize("width, head", [(1.0, "dwxcorr"), (0.25, "dwxcorr"), (0.25, "upchannel")])
def test_pysot_checkpoint_loads_strictly(tmp_path, width, head):
    table = _pysot_table(width, head)
    net = build_model(siamrpn_spec(width, head=head))
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == table
    state = _random_state(table)
    load_pysot_state_dict(net, _save_pysot_snapshot(tmp_path, state))
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    net.load_state_dict(state, strict=True)  # pysot names work with plain load_state_dict too


def test_pysot_checkpoint_mismatches_raise(tmp_path):
    net = build_model(siamrpn_spec(0.25))
    state = _random_state(_pysot_table(0.25, "dwxcorr"))
    state["rpn_head.cls.head.3.weight"] = torch.randn(12, 64, 1, 1)
    with pytest.raises(ModelError, match=r"mis-shaped.*rpn_head\.cls\.head\.3\.weight"):
        load_pysot_state_dict(net, _save_pysot_snapshot(tmp_path, state))
    del state["rpn_head.cls.head.3.weight"]
    state["neck.downsample.0.weight"] = torch.randn(1)
    with pytest.raises(ModelError, match=r"missing keys.*cls\.head\.3\.weight.*unexpected keys.*neck"):
        load_pysot_state_dict(net, state)
    with pytest.raises(ModelError, match="mis-shaped"):  # a full-width checkpoint into a student
        load_pysot_state_dict(net, _random_state(_pysot_table(1.0, "dwxcorr")))
    with pytest.raises(ModelNotFoundError):
        load_pysot_state_dict(net, tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        load_pysot_state_dict(net, tmp_path / "junk.pth")


def test_dasiamrpn_names_load_into_upchannel():
    renames = {"backbone.features.": "featureExtract.", "rpn_head.template_cls_conv.": "conv_cls1.",
               "rpn_head.template_loc_conv.": "conv_r1.", "rpn_head.search_cls_conv.": "conv_cls2.",
               "rpn_head.search_loc_conv.": "conv_r2.", "rpn_head.loc_adjust.": "regress_adjust."}
    state = {}
    for key, value in _random_state(_pysot_table(0.25, "upchannel")).items():
        if key.endswith("num_batches_tracked"):
            continue  # DaSiamRPN's files predate this buffer
        old = next(p for p in renames if key.startswith(p))
        state[renames[old] + key[len(old):]] = value
    net = load_pysot_state_dict(build_model(siamrpn_spec(0.25, head="upchannel")), state)
    assert torch.equal(net.rpn_head.loc_adjust.bias, state["regress_adjust.bias"])


def test_siamfc_pytorch_checkpoint_loads():
    """siamfc-pytorch AlexNetV1: conv1..conv5 Sequentials, grouped conv2/4/5, no BN after conv5."""
    c = [3, 96, 256, 384, 384, 256]
    groups = [1, 2, 1, 2, 2]
    kernels = [11, 5, 3, 3, 3]
    table = []
    for i in range(5):
        table += _conv(f"backbone.conv{i + 1}.0", c[i + 1], c[i] // groups[i], kernels[i])
        table += _bn(f"backbone.conv{i + 1}.1", c[i + 1]) if i < 4 else []
    net = build_model(siamfc_spec())
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == table
    state = _random_state(table)
    load_siamfc_state_dict(net, state)
    assert torch.equal(net.backbone.conv5[0].weight, state["backbone.conv5.0.weight"])


# ------------------------------------------------------------------------------------------ ONNX
class _Graph(nn.Module):
    def __init__(self, net: nn.Module, part: str) -> None:
        super().__init__()
        self.net, self.part = net, part

    def forward(self, *inputs):
        return getattr(self.net, self.part)(*inputs)


def _export(net, part, args, names_in, names_out, path):
    axes = {n: {0: "batch"} for n in names_in + names_out}
    torch.onnx.export(_Graph(net, part).eval(), args, str(path), input_names=names_in, output_names=names_out,
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    weights = {init.name for init in model.graph.initializer}
    dynamic = [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in weights]
    assert not dynamic, f"Conv nodes with a graph-tensor kernel: {dynamic}"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is deprecated, not gone
@pytest.mark.parametrize("name", list(SPECS))
def test_onnx_export_matches_torch(tmp_path, name):
    net = _net(name)
    z, x = _crops(net.spec, 1)
    zn, xn = list(net.template_names), ["x"]
    t_sess = _export(net, "template", (z,), ["z"], zn, tmp_path / "template.onnx")
    with torch.no_grad():
        zfs = net.template(z)
    s_sess = _export(net, "search", (x, *zfs), xn + zn, list(net.output_names), tmp_path / "search.onnx")

    z2, x2 = _crops(net.spec, 2)
    with torch.no_grad():
        zfs2 = net.template(z2)
        expected = net.search(x2, *zfs2)
        expected_bc = net.search(x2, *zfs)  # one template, two crops (SiamFC scales)
    got_z = t_sess.run(None, {"z": z2.numpy()})
    for g, e in zip(got_z, zfs2):
        torch.testing.assert_close(torch.from_numpy(g), e, atol=1e-4, rtol=1e-4)
    for feeds, want in (((x2, *zfs2), expected), ((x2, *zfs), expected_bc)):
        got = s_sess.run(None, {n: t.numpy() for n, t in zip(xn + zn, feeds)})
        for g, e in zip(got, want):
            torch.testing.assert_close(torch.from_numpy(g), e, atol=1e-4, rtol=1e-4)
