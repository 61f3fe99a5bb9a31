"""Calibration data for INT8 export: template/search crop pairs cut exactly as the tracker cuts them.

A pair is a template crop from a sequence's first frame (its ground-truth box, as ``Tracker.init`` crops it)
and a search crop from a later frame, centred where the tracker would centre it: on the previous frame's box,
with a small random shift and scale jitter. Sources are dataset folders (any layout :mod:`edgetrack.data`
reads) and video files. A video has no ground truth: its first frame's box is the centred box a quarter of the
frame's width and height, and the FP32 model's own tracker follows it to place the later crops.

The search graph takes the search crop *and* the template tensors, so a :class:`CalibrationSet` holds those
tensors too, computed by the FP32 template graph on each pair's template crop. Sets are cached per model under
``~/.cache/edgetrack/calib`` (``$EDGETRACK_CACHE/calib``), keyed by the spec, the model file, the data paths,
the number of pairs and the seed.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..data.fileio import atomic_path
from ..data.sequence import Sequence
from ..errors import DataError
from ..geometry import crop_square, to_network_input, xywh_to_cxcywh
from ..runtime.centre_head import search_side, template_side
from ..spec import TrackerSpec
from .formats import VIDEO_SUFFIXES

TEMPLATE_INPUT = "z"  # graph input names written by edgetrack.export.onnx_export
SEARCH_INPUT = "x"
CACHE_VERSION = 1

TemplateFn = Callable[[np.ndarray], list[np.ndarray]]  # normalised (N,3,H,W) template crops -> template tensors


@dataclass(frozen=True)
class CalibrationSet:
    """N pairs of network inputs, stacked on axis 0, float32, normalised as the spec says.

    ``template_inputs`` feeds the template graph (``{"z": ...}``); ``search_inputs`` feeds the search graph:
    ``"x"`` and the template tensors under the search graph's input names.
    """

    template_inputs: dict[str, np.ndarray]
    search_inputs: dict[str, np.ndarray]
    from_cache: bool = field(default=False, compare=False)

    @property
    def n_pairs(self) -> int:
        return len(self.search_inputs[SEARCH_INPUT])

    def template_batches(self, batch: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """The template graph's feeds, ``batch`` pairs at a time."""
        for i in range(0, self.n_pairs, batch):
            yield {k: v[i:i + batch] for k, v in self.template_inputs.items()}

    def search_batches(self, batch: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """The search graph's feeds, ``batch`` pairs at a time."""
        for i in range(0, self.n_pairs, batch):
            yield {k: v[i:i + batch] for k, v in self.search_inputs.items()}

    def head(self, n: int) -> CalibrationSet:
        """The first ``n`` pairs."""
        return CalibrationSet({k: v[:n] for k, v in self.template_inputs.items()},
                              {k: v[:n] for k, v in self.search_inputs.items()}, self.from_cache)


@dataclass(frozen=True)
class CalibrationConfig:
    """How pairs are drawn: ``shift`` is the largest centre shift as a fraction of the target's width/height,
    ``scale`` the largest log-scale change of the search region; ``max_video_frames`` caps frames read per video."""

    n_pairs: int = 300
    seed: int = 0
    shift: float = 0.1
    scale: float = 0.05
    max_video_frames: int = 600
    cache_dir: Path | None = None
    progress: bool = True


def cache_root() -> Path:
    """``$EDGETRACK_CACHE``, else ``~/.cache/edgetrack``."""
    env = os.environ.get("EDGETRACK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgetrack"


def cache_key(spec: TrackerSpec, model_file: Path, data: tuple[Path, ...], config: CalibrationConfig) -> str:
    """Hash of everything a calibration set depends on."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}\n{spec.to_json()}\n".encode())
    h.update(hashlib.sha256(Path(model_file).read_bytes()).digest())
    for path in data:
        h.update(f"\n{Path(path).resolve()}".encode())
    h.update(f"\n{config.n_pairs} {config.seed} {config.shift} {config.scale} {config.max_video_frames}".encode())
    return h.hexdigest()


def cache_path(spec: TrackerSpec, model_file: Path, data: tuple[Path, ...], config: CalibrationConfig) -> Path:
    root = config.cache_dir if config.cache_dir is not None else cache_root() / "calib"
    return Path(root) / f"{Path(model_file).stem}-{cache_key(spec, model_file, data, config)[:20]}.npz"


# ----------------------------------------------------------------------------------------------- crops
@dataclass(frozen=True)
class _Crops:
    """uint8 crops of pairs: templates (T,h,w,3), searches (N,H,W,3) and each search's template index."""

    templates: np.ndarray
    searches: np.ndarray
    template_index: np.ndarray


def template_crop(frame: np.ndarray, box, spec: TrackerSpec) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The exemplar crop and the padding colour, exactly as ``Tracker.init`` cuts them."""
    cx, cy, w, h = xywh_to_cxcywh(box)
    fill = tuple(cv2.mean(frame)[:3])
    s_z = round(template_side(spec, w, h))
    return crop_square(frame, (cx, cy), s_z, spec.exemplar_size, fill), fill


def search_crop(frame: np.ndarray, box, spec: TrackerSpec, fill, rng: np.random.Generator,
                config: CalibrationConfig) -> np.ndarray:
    """The search crop ``Tracker.update`` cuts around ``box`` (the previous state), jittered."""
    cx, cy, w, h = xywh_to_cxcywh(box)
    cx += rng.uniform(-config.shift, config.shift) * w
    cy += rng.uniform(-config.shift, config.shift) * h
    factor = float(np.exp(rng.uniform(-config.scale, config.scale)))
    s_x = search_side(spec, w * factor, h * factor)
    return crop_square(frame, (cx, cy), round(s_x), spec.instance_size, fill)


def _usable_steps(seq: Sequence) -> np.ndarray:
    """Frames t >= 1 whose box and previous box are both known."""
    known = np.isfinite(seq.gt).all(axis=1) & (seq.gt[:, 2] > 0) & (seq.gt[:, 3] > 0) & ~seq.absent
    return np.flatnonzero(known[1:] & known[:-1]) + 1


def _sequence_pairs(seq: Sequence, quota: int, spec: TrackerSpec, rng: np.random.Generator,
                    config: CalibrationConfig, bar) -> tuple[np.ndarray, list[np.ndarray]]:
    steps = _usable_steps(seq)
    if len(steps) == 0 or quota == 0:
        return np.zeros((0,)), []
    picks = np.sort(rng.choice(steps, size=quota, replace=quota > len(steps)))
    z, fill = template_crop(seq.frame(0), seq.gt[0], spec)
    searches = []
    for t in picks:
        searches.append(search_crop(seq.frame(int(t)), seq.gt[t - 1], spec, fill, rng, config))
        bar.update(1)
    return z, searches


def _video_pairs(path: Path, quota: int, spec: TrackerSpec, rng: np.random.Generator, config: CalibrationConfig,
                 make_tracker: Callable[[], object], bar) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pairs from a video: the tracker follows the centred quarter-size box and each search crop is cut around
    its box on the previous frame. Frames are streamed, never all held in memory."""
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        n = min(count, config.max_video_frames) if count > 1 else config.max_video_frames
        picks = set(rng.choice(np.arange(1, n), size=quota, replace=quota > n - 1).tolist()) if quota else set()
        ok, frame = cap.read()
        if not ok:
            raise DataError(f"--data {path}: cannot read this video")
        ih, iw = frame.shape[:2]
        box = ((iw - iw / 4) / 2, (ih - ih / 4) / 2, iw / 4, ih / 4)
        z, fill = template_crop(frame, box, spec)
        tracker = make_tracker()
        tracker.init(frame, box)
        searches = []
        for t in range(1, max(picks, default=0) + 1):
            ok, frame = cap.read()
            if not ok:
                break
            if t in picks:
                searches.append(search_crop(frame, box, spec, fill, rng, config))
                bar.update(1)
            box = tracker.update(frame).box
    finally:
        cap.release()
    return z, searches


def open_sources(data: tuple[Path, ...]) -> list[Sequence | Path]:
    """Every ``--data`` entry as sequences (dataset folders, any known layout) or video paths."""
    from ..data import open_dataset

    sources: list[Sequence | Path] = []
    for path in data:
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(path)
            continue
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if path.is_dir() else []
        try:
            sources.extend(s for s in open_dataset(path).sequences if len(_usable_steps(s)))
        except DataError:
            if not videos:
                raise
            sources.extend(videos)
    if not sources:
        raise DataError(f"no sequence in {', '.join(map(str, data))} has two consecutive frames with a visible "
                        "target to cut calibration pairs from")
    return sources


def _quotas(n_pairs: int, n_seqs: int) -> list[int]:
    base, rest = divmod(n_pairs, n_seqs)
    return [base + (1 if i < rest else 0) for i in range(n_seqs)]


def cut_pairs(sources: list[Sequence | Path], spec: TrackerSpec, config: CalibrationConfig,
              make_tracker: Callable[[], object] | None = None) -> _Crops:
    """Cut ``config.n_pairs`` pairs spread evenly over the sources (sequences, or videos followed by
    ``make_tracker()``'s tracker)."""
    rng = np.random.default_rng(config.seed)
    templates, searches, index = [], [], []
    with tqdm(total=config.n_pairs, desc="calibration pairs", unit="pair", disable=not config.progress) as bar:
        for src, quota in zip(sources, _quotas(config.n_pairs, len(sources))):
            if not isinstance(src, Path):  # a sequence of any reader (image folders, labelled video files)
                z, xs = _sequence_pairs(src, quota, spec, rng, config, bar)
            elif make_tracker is None:
                raise DataError(f"{src}: videos in --data need the FP32 tracker to follow the calibration target")
            else:
                z, xs = _video_pairs(src, quota, spec, rng, config, make_tracker, bar)
            if xs:
                index += [len(templates)] * len(xs)
                templates.append(z)
                searches += xs
    if not searches:
        raise DataError("no calibration pair could be cut from --data")
    return _Crops(np.stack(templates), np.stack(searches), np.asarray(index, dtype=np.int64))


# ----------------------------------------------------------------------------------------------- tensors
def crops_to_set(crops: _Crops, spec: TrackerSpec, template_fn: TemplateFn, template_names: tuple[str, ...],
                 from_cache: bool = False, template_tensors: list[np.ndarray] | None = None) -> CalibrationSet:
    """Normalise the crops and attach the template tensors (computed once per distinct template)."""
    swap = spec.channel_order != "BGR"  # crops come from BGR frames, as the tracker's default input_order
    z_unique = to_network_input(crops.templates, spec.mean, spec.std, swap)
    if template_tensors is None:
        template_tensors = [np.asarray(t, dtype=np.float32) for t in template_fn(z_unique)]
    if len(template_tensors) != len(template_names):
        raise DataError(f"the template graph gives {len(template_tensors)} tensors, expected {len(template_names)}")
    idx = crops.template_index
    search = {SEARCH_INPUT: to_network_input(crops.searches, spec.mean, spec.std, swap)}
    search.update({name: np.ascontiguousarray(t[idx]) for name, t in zip(template_names, template_tensors)})
    return CalibrationSet({TEMPLATE_INPUT: np.ascontiguousarray(z_unique[idx])}, search, from_cache)


def _save(path: Path, crops: _Crops, tensors: list[np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, templates=crops.templates, searches=crops.searches, template_index=crops.template_index,
             **{f"zf{i}": t for i, t in enumerate(tensors)})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _load(path: Path) -> tuple[_Crops, list[np.ndarray]] | None:
    try:
        with np.load(path) as npz:
            crops = _Crops(npz["templates"], npz["searches"], npz["template_index"])
            n = len([k for k in npz.files if k.startswith("zf")])
            return crops, [npz[f"zf{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError):  # a damaged cache entry is rebuilt
        return None


def build_calibration_set(spec: TrackerSpec, model_file: Path, data: tuple[Path, ...], template_fn: TemplateFn,
                          template_names: tuple[str, ...], config: CalibrationConfig = CalibrationConfig(),
                          make_tracker: Callable[[], object] | None = None) -> CalibrationSet:
    """Calibration pairs from ``data`` (cached). ``template_fn`` is the FP32 template graph; ``make_tracker()``
    builds the FP32 tracker that follows the target through videos (needed only when ``data`` holds videos)."""
    path = cache_path(spec, model_file, data, config)
    cached = _load(path) if path.is_file() else None
    if cached is not None:
        return crops_to_set(cached[0], spec, template_fn, template_names, True, cached[1])
    crops = cut_pairs(open_sources(data), spec, config, make_tracker)
    z = to_network_input(crops.templates, spec.mean, spec.std, spec.channel_order != "BGR")
    tensors = [np.asarray(t, dtype=np.float32) for t in template_fn(z)]
    _save(path, crops, tensors)
    return crops_to_set(crops, spec, template_fn, template_names, False, tensors)
