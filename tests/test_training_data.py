"""Training data: split by video, pair sampling and augmentation, family targets, Dataset/DataLoader."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, run_python  # noqa: E402

from edgetrack.data import Sequence, synthetic_sequence
from edgetrack.errors import DataError
from edgetrack.presets import nanotrack_spec
from edgetrack.training.augment import CropWindow, cut
from edgetrack.training.pairs import FrameCache, PairSampler, PairSpec, VideoSource, mirrored
from edgetrack.training.split import assert_disjoint, load_split, make_split, video_key
from edgetrack.training.targets import (
    TargetConfig,
    TargetMaker,
    anchor_free_targets,
    score_points,
    training_score_size,
)

PLAIN = PairSpec().without_augmentation()


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder beside the checkout is absent)")
    return path


@pytest.fixture(scope="module")
def synth():
    return [synthetic_sequence(s, n_frames=16, size=(160, 120), events=("scale",)) for s in (1, 2)]


def rect_sequence(box=(170.0, 150.0, 40.0, 24.0), size=(400, 340), n=3) -> Sequence:
    """A black frame with a white x, y, w, h rectangle (pixels x..x+w-1), the same in every frame."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    x, y, w, h = (int(v) for v in box)
    frame[y:y + h, x:x + w] = 255
    return Sequence.from_arrays("rect", [frame] * n, np.tile(np.asarray(box, float), (n, 1)))


def profile_extent(crop: np.ndarray, axis: int) -> tuple[float, float]:
    """(centre, length) of the white mass of a crop along ``axis`` (1: x, 0: y), in crop pixels."""
    mass = crop[..., 0].astype(np.float64).sum(axis=axis) / 255.0
    mass /= mass.max()
    coords = np.arange(len(mass))
    return float((coords * mass).sum() / mass.sum()), float(mass.sum())


# ----------------------------------------------------------------- pairs
def test_pairs_are_deterministic_by_seed_epoch_and_index(synth):
    a = PairSampler(synth, PairSpec(seed=3, neg=0.3, gray=0.3, search_flip=0.5))
    b = PairSampler(synth, PairSpec(seed=3, neg=0.3, gray=0.3, search_flip=0.5))
    for k in (0, 5, 11):
        x, y = a.sample(k, epoch=2), b.sample(k, epoch=2)
        assert np.array_equal(x["template"], y["template"]) and np.array_equal(x["search"], y["search"])
        np.testing.assert_array_equal(x["bbox"], y["bbox"])
    s = a.sample(4)
    assert s["template"].shape == (127, 127, 3) and s["search"].shape == (255, 255, 3)
    assert s["template"].dtype == np.uint8 and s["bbox"].dtype == np.float32 and s["bbox"].shape == (4,)
    assert not np.array_equal(a.sample(4, epoch=0)["search"], a.sample(4, epoch=1)["search"])
    other = PairSampler(synth, PairSpec(seed=4, neg=0.3, gray=0.3, search_flip=0.5))
    assert not np.array_equal(a.sample(4)["search"], other.sample(4)["search"])


def test_unshifted_box_is_centred_with_target_size_times_scale(synth):
    sampler = PairSampler(synth, PLAIN)
    for k in range(4):
        s = sampler.sample(k)
        seq = synth[0] if s["source"] == synth[0].name else synth[1]
        x, y, w, h = seq.gt[s["frames"][1]]
        s_z = np.sqrt((w + 0.5 * (w + h)) * (h + 0.5 * (w + h)))
        scale = 255 / round(s_z * 255 / 127)
        x1, y1, x2, y2 = s["bbox"]
        # crop_square aligns its window to whole frame pixels (as pysot's get_subwindow): the target centre
        # lands 0.5 to 1.5 frame pixels right of / below the crop centre 127
        for c in ((x1 + x2) / 2, (y1 + y2) / 2):
            assert 0.5 * scale - 1e-4 <= c - 127 <= 1.5 * scale + 1e-4
        assert x2 - x1 == pytest.approx(w * scale, rel=1e-5) and y2 - y1 == pytest.approx(h * scale, rel=1e-5)
        assert s["positive"] and s["has_gt"] and abs(s["frames"][0] - s["frames"][1]) <= PLAIN.max_gap


def test_box_lands_on_the_target_pixels_with_shift_and_scale():
    seq = rect_sequence()
    spec = PairSpec(search_shift=64, search_scale=0.18, template_color=0.0, search_color=0.0,
                    search_blur=0.0, neg=0.0)
    sampler = PairSampler([seq], spec)
    offsets = []
    for k in range(6):
        s = sampler.sample(k)
        x1, y1, x2, y2 = (float(v) for v in s["bbox"])
        cx, lx = profile_extent(s["search"], axis=0)
        cy, ly = profile_extent(s["search"], axis=1)
        assert cx == pytest.approx((x1 + x2) / 2, abs=0.3) and cy == pytest.approx((y1 + y2) / 2, abs=0.3)
        assert lx == pytest.approx(x2 - x1, abs=0.6) and ly == pytest.approx(y2 - y1, abs=0.6)
        offsets.append((x1 + x2) / 2 - 127)
    assert max(abs(o) for o in offsets) > 5  # the shift moved the target


def test_crop_window_matches_crop_square_exactly():
    seq = rect_sequence(box=(33.0, 41.0, 17.0, 9.0))
    window = CropWindow((52.3, 44.9), 61.7, 255)
    crop = cut(seq.frame(0), window, fill=(0, 0, 0))
    x1, y1, x2, y2 = window.map_box(np.array([33 + 8.0, 41 + 4.0, 17.0, 9.0]))
    assert profile_extent(crop, 0)[0] == pytest.approx((x1 + x2) / 2, abs=0.2)
    assert profile_extent(crop, 1)[0] == pytest.approx((y1 + y2) / 2, abs=0.2)


def test_flip_mirrors_crop_and_box(synth):
    base = PLAIN
    plain = PairSampler(synth, base).sample(2)
    flipped = PairSampler(synth, replace(base, search_flip=1.0)).sample(2)
    assert np.array_equal(flipped["search"], plain["search"][:, ::-1])
    x1, y1, x2, y2 = plain["bbox"]
    np.testing.assert_allclose(flipped["bbox"], [254 - x2, y1, 254 - x1, y2], atol=1e-4)


def test_pair_flip_mirrors_both_crops_and_keeps_every_other_draw(synth):
    augmented = PairSpec(seed=5, neg=0.3, search_flip=0.3)
    plain = PairSampler(synth, augmented).sample(4)
    flipped = PairSampler(synth, replace(augmented, pair_flip=1.0)).sample(4)
    assert np.array_equal(flipped["template"], plain["template"][:, ::-1])
    assert np.array_equal(flipped["search"], plain["search"][:, ::-1])
    x1, y1, x2, y2 = plain["bbox"]
    np.testing.assert_allclose(flipped["bbox"], [254 - x2, y1, 254 - x1, y2], atol=1e-4)
    assert flipped["frames"] == plain["frames"] and flipped["positive"] == plain["positive"]
    unlabeled = mirrored({"template": plain["template"], "search": plain["search"],
                          "bbox": np.full(4, np.nan, np.float32)}, 255)
    assert np.isnan(unlabeled["bbox"]).all() and unlabeled["bbox"].dtype == np.float32
    with pytest.raises(DataError, match="pair_flip"):
        PairSpec(pair_flip=1.5)


def test_data_augment_config_changes_the_pair_spec_and_refuses_unknown_keys():
    pytest.importorskip("torch")
    from edgetrack.errors import InputError
    from edgetrack.training.config import from_dict
    from edgetrack.training.loader import pair_spec_for
    from edgetrack.training.trainer import TrainConfig

    spec = nanotrack_spec(2)
    cfg = from_dict(TrainConfig, {"seed": 2, "data": {"augment": {"pair_flip": 0.5, "gray": 0.1}}})
    got = pair_spec_for(cfg, spec, rank=1)
    assert (got.pair_flip, got.gray, got.seed) == (0.5, 0.1, 2 + 7919)
    assert got.search_shift == PairSpec().search_shift and got.instance_size == spec.instance_size
    assert pair_spec_for(from_dict(TrainConfig, {}), spec) == replace(PairSpec(), seed=0)
    as_text = from_dict(TrainConfig, {"data": {"augment": {"unlabeled_box": "0.2,0.3", "max_gap": "50"}}})
    assert (pair_spec_for(as_text, spec).unlabeled_box, pair_spec_for(as_text, spec).max_gap) == ((0.2, 0.3), 50)
    with pytest.raises(InputError, match="instance_size"):
        pair_spec_for(from_dict(TrainConfig, {"data": {"augment": {"instance_size": 223}}}), spec)
    with pytest.raises(InputError, match="search_flp"):
        pair_spec_for(from_dict(TrainConfig, {"data": {"augment": {"search_flp": 0.5}}}), spec)
    with pytest.raises(DataError, match="pair_flip"):
        pair_spec_for(from_dict(TrainConfig, {"data": {"augment": {"pair_flip": 2}}}), spec)


def test_negative_pairs_and_gray(synth):
    sampler = PairSampler(synth, PairSpec(neg=1.0, gray=1.0, template_color=0.0, search_color=0.0))
    for k in range(4):
        s = sampler.sample(k)
        assert not s["positive"] and s["has_gt"] and np.isnan(s["bbox"]).all()
        assert s["source"] != s["search_source"]
        assert np.array_equal(s["search"][..., 0], s["search"][..., 1])
    one = PairSampler(synth[:1], PairSpec(neg=1.0)).sample(0)  # one source: a random location in it
    assert not one["positive"] and one["source"] == one["search_source"]
    named = [synthetic_sequence(s, n_frames=4, size=(96, 80), name=n)
             for s, n in ((1, "uav123_10fps_group1_1"), (2, "uav123_10fps_group1_3"), (3, "otb_Bolt"))]
    siblings = PairSampler(named, PairSpec(neg=1.0))
    pairs = {(p["source"], p["search_source"]) for p in map(siblings.sample, range(12))}
    assert all("otb_Bolt" in pair for pair in pairs)  # never group1 against group1


def test_unlabeled_video_pairs_and_reader(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 80))
    frames = synthetic_sequence(7, n_frames=12, size=(96, 80)).arrays
    for f in frames:
        writer.write(f)
    writer.release()
    cap = cv2.VideoCapture(path)
    sequential = [cap.read()[1] for _ in range(12)]
    streamed, preloaded = VideoSource(path, preload_frames=0), VideoSource(path)
    assert len(streamed) == len(preloaded) == 12 and preloaded.store and not streamed.store
    for i in (3, 4, 9, 1, 11, 0):  # forward reads and seeks agree with a sequential decode
        assert np.array_equal(streamed.frame(i), sequential[i])
        assert np.abs(preloaded.frame(i).astype(int) - sequential[i]).mean() < 3  # kept as JPEG q95
    sampler = PairSampler([path], PairSpec(neg=0.0))
    s = sampler.sample(0)
    assert s["positive"] and not s["has_gt"] and np.isnan(s["bbox"]).all()
    assert s["frames"][0] < s["frames"][1] <= s["frames"][0] + PairSpec().unlabeled_gap
    with pytest.raises(DataError):
        VideoSource(tmp_path / "missing.avi")


def test_blur_matches_the_cross_kernel_and_color_modes_run():
    from edgetrack.training.augment import BranchAug, motion_blur, photometric

    image = synthetic_sequence(3, n_frames=2, size=(96, 80)).frame(0)
    rng, check = np.random.default_rng(1), np.random.default_rng(1)
    size, wx = int(check.choice(np.arange(5, 46, 2))), float(check.random())
    kernel = np.zeros((size, size), np.float32)
    kernel[:, size // 2] += wx / size
    kernel[size // 2, :] += (1 - wx) / size
    assert np.abs(motion_blur(image, rng).astype(int) - cv2.filter2D(image, -1, kernel)).max() <= 1
    for mode in ("pca", "hsv"):
        out, flipped = photometric(image, BranchAug(color=1.0), np.random.default_rng(2), mode)
        assert out.shape == image.shape and out.dtype == np.uint8 and not flipped
        assert 0 < np.abs(out.astype(int) - image).mean() < 40


def test_frame_cache_is_lru_by_bytes():
    cache = FrameCache(max_bytes=3 * 100)
    loads = []
    for key in (1, 2, 1, 3, 4, 1):
        cache.get(key, lambda k=key: loads.append(k) or np.zeros(100, np.uint8))
    assert loads == [1, 2, 3, 4] and len(cache) == 3 and cache.hits == 2


def test_pair_spec_defaults_match_nanotrack_config():
    cfg = shared_path("weights", "nanotrack", "configs", "configv2.yaml")
    assert PairSpec.from_config(cfg) == PairSpec()
    with pytest.raises(DataError):
        PairSpec(neg=1.5)


# ----------------------------------------------------------------- targets
def test_anchor_free_targets_centred_box():
    spec = nanotrack_spec(2)
    maker = TargetMaker(spec, config=TargetConfig(sample=False))
    assert maker.shapes == {"cls_label": (16, 16), "reg_target": (4, 16, 16)}
    t = maker(np.array([95.0, 95.0, 159.0, 159.0]), True)  # 64 x 64 box centred on point (8, 8) = 127
    cls, reg = t["cls_label"], t["reg_target"]
    assert cls.dtype == np.int64 and reg.dtype == np.float32
    assert cls[8, 8] == 1 and (cls == 1).sum() == 1 and cls[0, 0] == 0 and cls[8, 10] == -1
    np.testing.assert_allclose(reg[:, 8, 8], [32, 32, 32, 32])
    np.testing.assert_allclose(reg[:, 8, 9], [48, 32, 16, 32])
    points = score_points(16, 16, 255)
    full = anchor_free_targets(np.array([63.0, 63.0, 191.0, 191.0]), True, True, points,
                               TargetConfig(sample=False), np.random.default_rng(0))
    sampled = TargetMaker(spec)(np.array([63.0, 63.0, 191.0, 191.0]), True, rng=np.random.default_rng(0))
    assert (full["cls_label"] == 0).sum() > 48 and (sampled["cls_label"] == 0).sum() == 48
    assert (sampled["cls_label"] == 1).sum() == (full["cls_label"] == 1).sum() == 9


def test_targets_of_another_crop_size_use_the_points_the_runtime_decodes_with():
    from edgetrack.runtime.target import AnchorFreeSearch

    spec = nanotrack_spec(2)
    for size in (239, 255, 271):
        maker = TargetMaker(spec, instance_size=size)
        runtime = AnchorFreeSearch(spec.with_search_size(size)).points + size // 2
        s = maker.score_size
        np.testing.assert_array_equal(maker.points.reshape(2, -1).T, runtime)
        assert s == spec.with_search_size(size).score_size


def test_rpn_targets_on_an_anchor_sized_box():
    from edgetrack.models.siamrpn import siamrpn_spec

    spec = siamrpn_spec()  # tracks with 287 crops; trains with 255 (score 21 -> 17)
    assert training_score_size(spec, 255) == 17
    maker = TargetMaker(spec)
    t = maker(np.array([95.0, 95.0, 159.0, 159.0]), True)  # exactly the 64 x 64 ratio-1 anchor at the centre
    assert t["cls_label"].shape == (5, 17, 17) and t["reg_target"].shape == (4, 5, 17, 17)
    k = list(spec.anchor_ratios).index(1.0)
    assert t["cls_label"][k, 8, 8] == 1
    np.testing.assert_allclose(t["reg_target"][:, k, 8, 8], 0.0, atol=1e-6)
    n_pos = (t["cls_label"] == 1).sum()
    assert 1 <= n_pos <= 16 and (t["cls_label"] == 0).sum() <= 48
    np.testing.assert_allclose(t["reg_weight"][t["cls_label"] == 1], 1.0 / n_pos, rtol=1e-5)
    assert t["reg_weight"][t["cls_label"] != 1].sum() == 0


def test_siamfc_targets_and_negative_or_unlabeled_pairs():
    from edgetrack.models.siamfc import siamfc_spec
    from edgetrack.models.siamrpn import siamrpn_spec

    fc = TargetMaker(siamfc_spec())
    t = fc(np.array([107.0, 107.0, 147.0, 147.0]), True)
    assert t["labels"].shape == (1, 17, 17) and t["labels"][0, 8, 8] == 1 and t["labels"].sum() == 13
    assert t["weights"].sum() == pytest.approx(1.0) and t["weights"][t["labels"] == 1].sum() == pytest.approx(0.5)
    nan = np.full(4, np.nan, np.float32)
    for maker in (TargetMaker(nanotrack_spec(3)), TargetMaker(siamrpn_spec()), fc):
        neg = maker(nan, False, True)
        unl = maker(nan, True, False)
        if maker.family == "siamfc":
            assert neg["labels"].sum() == 0 and neg["weights"].sum() == pytest.approx(1.0)
            assert unl["weights"].sum() == 0
            continue
        assert (neg["cls_label"] == 0).all() and (unl["cls_label"] == -1).all()
        assert not neg["reg_target"].any() and neg.get("reg_weight", np.zeros(1)).sum() == 0
    with pytest.raises(DataError):
        fc(nan, True, True)


# ----------------------------------------------------------------- split
def test_video_keys_and_split_keeps_sub_sequences_together():
    assert video_key("uav123_10fps_group1_3") == video_key("uav123_10fps_group1_1") == "uav123/group1"
    assert video_key("uav123_10fps_person12_1") == "uav123/person12"
    assert len({video_key(f"uav123_10fps_wakeboard{n}") for n in (3, 5, 10)}) == 3
    assert video_key("otb_Human3_first199") == "human3" and video_key("vot2015_car1_first252") == "car1"
    assert video_key("/x/pysot_bag.avi") == video_key("vot_bag") == "bag"
    frames = {"uav123_10fps_group1_1": 400, "uav123_10fps_group1_3": 400, "uav123_10fps_bike1": 300,
              "uav123_10fps_car10": 200, "otb_Bolt": 100, "otb_Woman": 250}
    split = make_split(frames)
    assert split == make_split(frames)
    side = {n: s for s in ("train", "val") for n in split[s]}
    assert side["uav123_10fps_group1_1"] == side["uav123_10fps_group1_3"]
    assert sorted(split["train"] + split["val"]) == sorted(frames)


def test_packaged_dev_split_is_disjoint_by_video():
    split = load_split("dev")
    assert_disjoint(split["train"] + split["unlabeled_train"], split["val"] + split["unlabeled_val"])
    keys = {s: {video_key(n) for n in split[s]} for s in ("train", "val")}
    assert not keys["train"] & keys["val"] and len(split["train"]) + len(split["val"]) == 25
    groups = [n for n in split["train"] + split["val"] if "group1_" in n]
    assert len(groups) == 3 and (all(n in split["train"] for n in groups) or all(n in split["val"] for n in groups))
    with pytest.raises(DataError, match="validation sequences"):
        assert_disjoint(["otb_Bolt", split["val"][0]], split["val"])
    with pytest.raises(DataError, match="shares videos"):
        assert_disjoint(["uav123_10fps_group1_9"], ["uav123_10fps_group1_1"])
    with pytest.raises(DataError, match="no split named"):
        load_split("nope")


def test_dev_split_matches_the_shared_sequences():
    dev = shared_path("data", "dev-sequences")
    doc = json.loads((Path(__file__).resolve().parents[1] / "edgetrack/data/splits/dev.json").read_text())
    for name, count in doc["frames"].items():
        assert len(list((dev / name / "img").iterdir())) == count
    val_frames = sum(doc["frames"][n] for n in doc["val"])
    assert 0.25 <= val_frames / sum(doc["frames"].values()) <= 0.35


# ----------------------------------------------------------------- dataset
def test_dataset_items_and_dataloader_workers_agree():
    # In a fresh interpreter: late in a long pytest process the main-process targets have come out different from
    # the workers' (reg_target only, with the images, boxes and labels equal; cause not found), never in a process
    # of its own. Forked workers must serve exactly the main process's pairs.
    pytest.importorskip("torch")
    out = run_python("""
        import torch
        from torch.utils.data import DataLoader
        from edgetrack.data import synthetic_sequence
        from edgetrack.presets import nanotrack_spec
        from edgetrack.training.dataset import PairDataset, collate, worker_init
        from edgetrack.training.pairs import PairSpec

        synth = [synthetic_sequence(s, n_frames=16, size=(160, 120), events=("scale",)) for s in (1, 2)]
        ds = PairDataset(synth, PairSpec(seed=5, neg=0.25), nanotrack_spec(2), length=6, epoch=1)
        item = ds[0]
        assert item["template"].shape == (3, 127, 127) and item["search"].shape == (3, 255, 255)
        assert item["template"].dtype == torch.float32 and item["cls_label"].shape == (16, 16)
        batches = []
        for workers in (0, 2):
            loader = DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate,
                                worker_init_fn=worker_init, timeout=60 if workers else 0)
            batches.append(list(loader))
        for b0, b2 in zip(*batches):
            assert b0["source"] == b2["source"]
            for key in ("template", "search", "bbox", "positive", "cls_label", "reg_target"):
                assert torch.equal(b0[key].nan_to_num(-7), b2[key].nan_to_num(-7)), key
        ds.set_epoch(2)
        assert not torch.equal(ds[0]["search"], batches[0][0]["search"][0])
        print("agree", len(batches[0]))
    """)
    assert out == "agree 2"
