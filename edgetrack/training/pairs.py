"""Siamese training pairs (template crop, search crop, target box) from sequences and videos (numpy + OpenCV).

- labeled sequences (any :class:`edgetrack.data.Sequence`, synthetic ones included): template from frame ``i``,
  search from frame ``j``, ``|i - j| <= max_gap``, both with a usable box; the search box is known;
- unlabeled videos (:class:`VideoSource`): a random box in frame ``i`` is the template, the search crop comes
  from a later frame around the same centre; ``bbox`` NaN, ``has_gt=False`` (a teacher's outputs are the targets);
- negative pairs (probability ``PairSpec.neg``): the search crop comes from a source of another video
  (:func:`edgetrack.training.split.video_key`), on its target or a random location; ``positive=False``.

Sample ``index`` of ``epoch`` depends only on ``(PairSpec.seed, epoch, index)``, never on worker or order.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgetrack.errors import DataError
from edgetrack.geometry import context_size

from .augment import COLOR_MODES, BranchAug, flip_box, photometric, plan_window, random_box, to_gray
from .augment import cut as cut_window
from .pair_sources import FrameCache, LabeledSource, VideoSource, as_source
from .split import video_key

__all__ = ["PairSpec", "PairSampler", "FrameCache", "LabeledSource", "VideoSource", "as_source", "mirrored"]


@dataclass(frozen=True)
class PairSpec:
    """How pairs are sampled and augmented. Defaults: NanoTrack's configs (``configv2.yaml`` DATASET section:
    template shift 4 / scale 0.05 / colour 1.0, search shift 64 / scale 0.18 / blur 0.2 / colour 1.0,
    neg 0.2, gray 0.0) and pysot's ``FRAME_RANGE`` 100 (VID, GOT-10k, LaSOT); ``pair_flip`` (not in NanoTrack)
    mirrors whole pairs. Shifts are in crop pixels, scales are relative changes of the crop side,
    blur/flip/color/gray/neg/pair_flip are probabilities."""

    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    template_shift: float = 4.0
    template_scale: float = 0.05
    template_blur: float = 0.0
    template_flip: float = 0.0
    template_color: float = 1.0
    search_shift: float = 64.0
    search_scale: float = 0.18
    search_blur: float = 0.2
    search_flip: float = 0.0
    search_color: float = 1.0
    gray: float = 0.0
    neg: float = 0.2
    pair_flip: float = 0.0  # the whole pair mirrored (template, search and box together): still a true pair
    max_gap: int = 100
    unlabeled_gap: int = 10
    unlabeled_box: tuple[float, float] = (0.1, 0.4)  # random box side, as a fraction of the frame's short side
    color_mode: str = "pca"
    seed: int = 0

    def __post_init__(self) -> None:
        sizes = (self.exemplar_size, self.instance_size)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in sizes) or sizes[1] < sizes[0]:
            raise DataError(f"PairSpec needs integer sizes 8 <= exemplar_size <= instance_size, got {sizes}")
        if not all(0.0 <= v <= 1.0 for v in (self.gray, self.neg, self.pair_flip)):
            raise DataError(f"PairSpec.gray, neg and pair_flip are probabilities in [0, 1], got {self.gray}, "
                            f"{self.neg}, {self.pair_flip}")
        if self.max_gap < 0 or self.unlabeled_gap < 0 or self.seed < 0 or self.context_amount < 0:
            raise DataError("PairSpec.max_gap, unlabeled_gap, seed and context_amount must be >= 0")
        lo, hi = self.unlabeled_box
        if not 0.0 < lo <= hi <= 1.0:
            raise DataError(f"PairSpec.unlabeled_box must satisfy 0 < lo <= hi <= 1, got {self.unlabeled_box}")
        if self.color_mode not in COLOR_MODES:
            raise DataError(f"PairSpec.color_mode must be one of {COLOR_MODES}, got {self.color_mode!r}")
        _ = (self.template_aug, self.search_aug)  # validates the branch settings

    @property
    def template_aug(self) -> BranchAug:
        return BranchAug(self.template_shift, self.template_scale, self.template_blur, self.template_flip,
                         self.template_color)

    @property
    def search_aug(self) -> BranchAug:
        return BranchAug(self.search_shift, self.search_scale, self.search_blur, self.search_flip,
                         self.search_color)

    def without_augmentation(self) -> PairSpec:
        """The same spec with every shift, scale, blur, flip, colour, gray and negative switched off."""
        off = {f.name: 0.0 for f in fields(self) if f.name.startswith(("template_", "search_"))}
        return replace(self, gray=0.0, neg=0.0, pair_flip=0.0, **off)

    @classmethod
    def from_config(cls, path: str | os.PathLike, **overrides: Any) -> PairSpec:
        """Read a pysot/NanoTrack YAML config (``DATASET.TEMPLATE/SEARCH``, ``NEG``, ``GRAY``,
        ``TRAIN.EXEMPLAR_SIZE/SEARCH_SIZE``, ``TRACK.CONTEXT_AMOUNT``); keys it lacks keep their defaults."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"cannot read training config {path}: {exc}") from exc
        ds, train, track = (data.get(k) or {} for k in ("DATASET", "TRAIN", "TRACK"))
        keys = {f"{b}_{k}": (ds.get(b.upper()) or {}, k.upper(), float)
                for b in ("template", "search") for k in ("shift", "scale", "blur", "flip", "color")}
        keys.update(neg=(ds, "NEG", float), gray=(ds, "GRAY", float), exemplar_size=(train, "EXEMPLAR_SIZE", int),
                    instance_size=(train, "SEARCH_SIZE", int), context_amount=(track, "CONTEXT_AMOUNT", float))
        values: dict[str, Any] = {name: kind(sec[key]) for name, (sec, key, kind) in keys.items() if key in sec}
        values.update(overrides)
        return cls(**values)


def mirrored(pair: dict[str, Any], instance_size: int) -> dict[str, Any]:
    """``pair`` with template and search crops mirrored left to right, and the search box with them (an unknown
    box stays NaN)."""
    return {**pair, "template": np.ascontiguousarray(pair["template"][:, ::-1]),
            "search": np.ascontiguousarray(pair["search"][:, ::-1]), "bbox": flip_box(pair["bbox"], instance_size)}


class PairSampler:
    """Draws training pairs from ``sources`` (sequences and/or video paths); ``weights`` sets how often each
    source is picked (default: equally often, as pysot picks videos). ``cache_mb`` bounds the frame LRU."""

    def __init__(self, sources: Iterable[Any], spec: PairSpec | None = None,
                 weights: Iterable[float] | None = None, cache_mb: float = 256.0) -> None:
        self.sources = tuple(as_source(s) for s in sources)
        if not self.sources:
            raise DataError("no sources to sample training pairs from")
        self.spec = spec or PairSpec()
        w = np.ones(len(self.sources)) if weights is None else np.asarray(list(weights), dtype=np.float64)
        if w.shape != (len(self.sources),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise DataError(f"weights must be {len(self.sources)} non-negative numbers with a positive sum")
        self._cum = np.cumsum(w / w.sum())
        self.video_keys = tuple(video_key(s.name) for s in self.sources)
        self.cache = FrameCache(int(cache_mb * 2**20))

    def rng(self, index: int, epoch: int = 0) -> np.random.Generator:
        if index < 0 or epoch < 0:
            raise DataError(f"sample index and epoch must be >= 0, got index={index}, epoch={epoch}")
        return np.random.default_rng([self.spec.seed, int(epoch), int(index)])

    def frame(self, k: int, index: int) -> np.ndarray:
        src = self.sources[k]
        if not src.decoded:
            return src.frame(index)
        return self.cache.get((k, index), lambda: src.frame(index))

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """Pair ``index`` of ``epoch``: ``template`` (E, E, 3) uint8, ``search`` (I, I, 3) uint8 (BGR),
        ``bbox`` float32 (4,) ``x1, y1, x2, y2`` in search-crop pixels (NaN when unknown), ``positive``,
        ``has_gt``, and ``source``, ``search_source``, ``frames`` (template and search frame indices)."""
        rng = self.rng(index, epoch)
        u_gray, u_neg, u_src = rng.random(3)
        gray, k = bool(u_gray < self.spec.gray), int(np.searchsorted(self._cum, u_src, side="right"))
        k = min(k, len(self.sources) - 1)
        t_rng, s_rng, p_rng = rng.spawn(3)
        if u_neg < self.spec.neg:
            pair = self._negative(k, p_rng, t_rng, s_rng, gray)
        elif self.sources[k].labeled:
            pair = self._positive(k, p_rng, t_rng, s_rng, gray)
        else:
            pair = self._unlabeled(k, p_rng, t_rng, s_rng, gray)
        # drawn after the spawn, so runs without pair_flip keep every other random number they had
        return mirrored(pair, self.spec.instance_size) if rng.random() < self.spec.pair_flip else pair

    # ----------------------------------------------------------------- branches
    def _sides(self, box: np.ndarray) -> tuple[float, float]:
        s_z = context_size(box[2], box[3], self.spec.context_amount)
        return s_z, s_z * self.spec.instance_size / self.spec.exemplar_size

    def _crop(self, frame: np.ndarray, center_box: np.ndarray, side: float, template: bool,
              rng: np.random.Generator, gray: bool) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        aug = spec.template_aug if template else spec.search_aug
        out = spec.exemplar_size if template else spec.instance_size
        window = plan_window((center_box[0], center_box[1]), side, out, aug, rng)
        image = cut_window(frame, window)
        if gray:
            image = to_gray(image)
        image, flipped = photometric(image, aug, rng, spec.color_mode)
        box = window.map_box(center_box)
        return image, flip_box(box, out) if flipped else box

    def _template(self, k: int, i: int, box: np.ndarray, rng, gray: bool) -> np.ndarray:
        return self._crop(self.frame(k, i), box, self._sides(box)[0], True, rng, gray)[0]

    def _result(self, template, search, bbox, positive, has_gt, names, frames) -> dict[str, Any]:
        return {"template": template, "search": search, "bbox": np.asarray(bbox, dtype=np.float32),
                "positive": bool(positive), "has_gt": bool(has_gt), "source": names[0],
                "search_source": names[1], "frames": (int(frames[0]), int(frames[1]))}

    def _positive(self, k: int, rng, t_rng, s_rng, gray: bool) -> dict[str, Any]:
        src = self.sources[k]
        valid, gap = src.valid, self.spec.max_gap
        i = int(rng.choice(valid))
        lo, hi = np.searchsorted(valid, i - gap), np.searchsorted(valid, i + gap, side="right")
        j = int(rng.choice(valid[lo:hi]))
        template = self._template(k, i, src.box(i), t_rng, gray)
        box_j = src.box(j)
        search, bbox = self._crop(self.frame(k, j), box_j, self._sides(box_j)[1], False, s_rng, gray)
        return self._result(template, search, bbox, True, True, (src.name, src.name), (i, j))

    def _unlabeled(self, k: int, rng, t_rng, s_rng, gray: bool) -> dict[str, Any]:
        src = self.sources[k]
        n = len(src)
        i = int(rng.integers(0, max(1, n - 1)))
        step = int(rng.integers(1, self.spec.unlabeled_gap + 1)) if self.spec.unlabeled_gap else 0
        j = min(n - 1, i + step)
        frame_i = self.frame(k, i)
        box = random_box(frame_i.shape, self.spec.unlabeled_box, rng)
        s_z, s_x = self._sides(box)
        template = self._crop(frame_i, box, s_z, True, t_rng, gray)[0]
        search = self._crop(self.frame(k, j), box, s_x, False, s_rng, gray)[0]
        return self._result(template, search, np.full(4, np.nan), True, False, (src.name, src.name), (i, j))

    def _negative(self, k: int, rng, t_rng, s_rng, gray: bool) -> dict[str, Any]:
        src = self.sources[k]
        if src.labeled:
            i = int(rng.choice(src.valid))
            box = src.box(i)
        else:
            i = int(rng.integers(0, len(src)))
            box = random_box(self.frame(k, i).shape, self.spec.unlabeled_box, rng)
        template = self._template(k, i, box, t_rng, gray)
        others = [o for o, key in enumerate(self.video_keys) if key != self.video_keys[k]] \
            or [o for o in range(len(self.sources)) if o != k] or [k]
        o = others[int(rng.integers(0, len(others)))]
        other = self.sources[o]
        on_target = bool(rng.random() < 0.5) and o != k and other.labeled
        if on_target:
            j = int(rng.choice(other.valid))
            center_box = other.box(j)
            side = self._sides(center_box)[1]
        else:
            j = int(rng.integers(0, len(other)))
            side = self._sides(box)[1]
            center_box = self._random_location(o, j, side, rng)
        search = self._crop(self.frame(o, j), center_box, side, False, s_rng, gray)[0]
        return self._result(template, search, np.full(4, np.nan), False, True, (src.name, other.name), (i, j))

    def _random_location(self, k: int, j: int, side: float, rng, tries: int = 20) -> np.ndarray:
        """A random crop centre in frame ``j`` of source ``k``; on a labeled source, one whose (shifted) crop
        keeps the target's centre outside when such a place is found within ``tries`` draws."""
        h, w = self.frame(k, j).shape[:2]
        src = self.sources[k]
        target = src.box(j) if src.labeled and src.usable[j] else None
        reach = side * (0.5 + self.spec.search_shift / self.spec.instance_size)
        xy = rng.random((tries, 2)) * [w - 1, h - 1]
        for x, y in xy:
            if target is None or abs(x - target[0]) > reach or abs(y - target[1]) > reach:
                break
        return np.array([x, y, 1.0, 1.0])
