"""The tracker spec: the single source of truth for a tracker's constants.

A spec travels with every checkpoint (safetensors metadata) and every exported file (ONNX metadata or a JSON
sidecar), so the runtime needs nothing else to track with a model. It holds the network architecture (as builder
keyword arguments, interpreted only by :mod:`edgetrack.models`) and every constant the tracking loop uses.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import SpecError

FAMILIES = ("nanotrack", "siamrpn", "siamfc", "vit")
#: Families whose every score-map cell proposes a box on a fully convolutional map: their search size can change
#: (:meth:`TrackerSpec.with_search_size`) and their search can lead the target (``motion_gain``).
CANDIDATE_FAMILIES = ("nanotrack", "siamrpn")
SPEC_VERSION = 1
METADATA_KEY = "edgetrack_spec"
#: Largest crop side, map side, stride or scale count a spec may give (far beyond any tracker's; keeps the
#: runtime's crops and windows allocatable).
MAX_INT_FIELD = 4096

#: The constants that decide how a search's candidates are chosen (not what the network computes): what
#: ``edgetrack tune`` chooses and what ``Tracker.set_decoding`` may change on a loaded model.
DECODING_CONSTANTS = ("window_influence", "penalty_k", "lr", "motion_gain", "motion_smooth")


@dataclass(frozen=True)
class TrackerSpec:
    """Every constant a Siamese tracker needs, plus the architecture of its two graphs.

    Pixel values fed to the network are ``(pixel - mean) / std`` in ``channel_order``; crops are padded with
    the per-channel image mean. ``window_influence``, ``penalty_k`` and ``lr`` follow pysot's definitions.
    ``score_origin`` is the offset in crop pixels of score-map cell 0 (x and y) from the search crop's centre
    (``instance_size // 2``); ``None`` is pysot's ``-(score_size // 2) * stride``. :meth:`with_search_size` sets
    it when a network runs on a search crop of another size than it was trained on.
    ``motion_gain`` > 0 (``nanotrack`` and ``siamrpn``) centres each search crop ahead of the target, at its last
    position plus ``motion_gain`` times its velocity (the last moves, averaged with weight ``motion_smooth`` on the
    previous average); 0 is pysot's search around the last position.
    ``template_factor`` > 0 (the ``vit`` family) makes the template crop ``template_factor * sqrt(w * h)`` wide
    instead of the context rule; :mod:`edgetrack.runtime.centre_head` says how the vit family uses the rest.
    ``calibration`` maps each update's evidence to its result's confidence and state
    (:mod:`edgetrack.runtime.confidence`, fitted per model by ``edgetrack calibrate``); empty: a generic default.
    ``memory_tokens`` > 0 (``vit`` family only) turns on the condensed template memory
    (:mod:`edgetrack.runtime.template_memory`): a template is taken every ``memory_every`` frames when the
    calibrated confidence is at least ``memory_confidence``, and the memory is condensed to ``memory_tokens``
    template tokens, ``memory_protected`` of them kept for the initial template's.
    ``long_term`` is whether ``Tracker(model)`` searches for a LOST target by default (the long-term mode,
    :class:`edgetrack.Recovery`); False where the model tracked worse with it on held-out footage, the reason in
    ``long_term_note``. An explicit ``recovery=`` overrides it.
    """

    family: str
    arch: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    stride: int = 16
    score_size: int = 16
    score_origin: float | None = None
    template_feat_size: int = 8
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "BGR"
    window_influence: float = 0.455
    motion_gain: float = 0.0
    motion_smooth: float = 0.0
    penalty_k: float = 0.055
    lr: float = 0.37
    score_activation: str = "softmax"  # softmax over 2 channels, or sigmoid over 1
    anchor_ratios: tuple[float, ...] = ()
    anchor_scales: tuple[float, ...] = ()
    scale_num: int = 1
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_up: int = 16
    lost_threshold: float = 0.0
    template_factor: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)
    memory_tokens: int = 0
    memory_every: int = 20
    memory_confidence: float = 0.7
    memory_protected: float = 0.75
    long_term: bool = True
    long_term_note: str = ""
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        validate(self)

    # ----------------------------------------------------------------- derived
    @property
    def num_anchors(self) -> int:
        return len(self.anchor_ratios) * len(self.anchor_scales)

    # ----------------------------------------------------------------- I/O
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        if out["score_origin"] is None:  # pysot's rule: files of specs that do not need the key stay as they were
            del out["score_origin"]
        if out["long_term"] and not out["long_term_note"]:  # the default mode: files stay as they were
            del out["long_term"], out["long_term_note"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerSpec:
        if not isinstance(data, dict):
            raise SpecError(f"spec must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SpecError(f"spec has unknown keys {unknown}; known keys are {sorted(known)}")
        if "family" not in data:
            raise SpecError("spec has no 'family'")
        version = data.get("version", SPEC_VERSION)
        if not isinstance(version, int) or version > SPEC_VERSION:
            raise SpecError(f"spec version {version!r} is newer than this edgetrack understands ({SPEC_VERSION})")
        kwargs = {}
        for key, value in data.items():
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SpecError(f"malformed spec: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> TrackerSpec:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def with_(self, **changes: Any) -> TrackerSpec:
        """A copy with some constants changed (validated again)."""
        return replace(self, **changes)

    @property
    def origin(self) -> float:
        """Offset of score-map cell 0 from the search crop's centre, in crop pixels (see ``score_origin``)."""
        if self.score_origin is not None:
            return float(self.score_origin)
        return float(-(self.score_size // 2) * self.stride)

    def with_search_size(self, instance_size: int) -> TrackerSpec:
        """This spec for a search crop of ``instance_size`` pixels (same network, same weights): the score map
        gains or loses one cell per ``stride`` pixels, and cell 0 keeps its place relative to the crop's top-left
        corner, where a fully convolutional network's first cell looks. (pysot's rule, which re-centres the cells
        on the crop, agrees only when the map changes by an even number of cells; otherwise every box would be
        off by half a stride.) For the families whose score maps are fully convolutional: nanotrack, siamrpn."""
        if self.family not in CANDIDATE_FAMILIES:
            raise SpecError(f"the search size of a {self.family!r} spec cannot be changed (nanotrack and siamrpn "
                            "score maps can)")
        if isinstance(instance_size, bool) or not isinstance(instance_size, int):
            raise SpecError(f"search size must be an integer, got {instance_size!r}")
        diff = instance_size - self.instance_size
        if diff % self.stride:
            raise SpecError(f"search size {instance_size} must differ from {self.instance_size} by a multiple of the "
                            f"stride {self.stride}")
        score = self.score_size + diff // self.stride
        if instance_size < self.exemplar_size or score < 1:
            raise SpecError(f"search size {instance_size} is smaller than the exemplar ({self.exemplar_size})")
        return replace(self, instance_size=instance_size, score_size=score,
                       score_origin=self.origin_for(instance_size))

    def origin_for(self, instance_size: int) -> float:
        """:attr:`origin` for a search crop of ``instance_size`` pixels, cell 0 staying where it is relative to
        the crop's top-left corner (see :meth:`with_search_size`)."""
        return self.origin + self.instance_size // 2 - instance_size // 2


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SpecError(message)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(spec: TrackerSpec) -> None:
    """Raise :class:`SpecError` if the spec is inconsistent."""
    _check(spec.family in FAMILIES, f"unknown family {spec.family!r}; expected one of {FAMILIES}")
    _check(isinstance(spec.arch, dict), "arch must be a mapping of builder arguments")
    for name in ("exemplar_size", "instance_size", "stride", "score_size", "template_feat_size", "scale_num",
                 "response_up"):
        value = getattr(spec, name)
        _check(isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT_FIELD,
               f"{name} must be a positive integer up to {MAX_INT_FIELD}, got {value!r}")
    _check(spec.instance_size >= spec.exemplar_size, "instance_size must be >= exemplar_size")
    _check(spec.score_origin is None or (_is_num(spec.score_origin) and abs(spec.score_origin) <= MAX_INT_FIELD),
           f"score_origin must be null or a finite number of pixels, got {spec.score_origin!r}")
    for name in ("context_amount", "window_influence", "penalty_k", "lr", "scale_step", "scale_penalty",
                 "scale_lr", "lost_threshold", "template_factor"):
        _check(_is_num(getattr(spec, name)), f"{name} must be a finite number, got {getattr(spec, name)!r}")
    _check(0.0 <= spec.context_amount <= 10.0, f"context_amount must be in [0, 10], got {spec.context_amount!r}")
    _check(0.0 <= spec.penalty_k <= 10.0, f"penalty_k must be in [0, 10], got {spec.penalty_k!r}")
    _check(0.0 <= spec.window_influence <= 1.0, "window_influence must be in [0, 1]")
    _check(0.0 <= spec.lr <= 1.0, "lr must be in [0, 1]")
    _check(_is_num(spec.motion_gain) and 0.0 <= spec.motion_gain <= 2.0,
           f"motion_gain must be in [0, 2], got {spec.motion_gain!r}")
    _check(_is_num(spec.motion_smooth) and 0.0 <= spec.motion_smooth < 1.0,
           f"motion_smooth must be in [0, 1), got {spec.motion_smooth!r}")
    _check(spec.motion_gain == 0.0 or spec.family in CANDIDATE_FAMILIES,
           f"motion_gain is for the nanotrack and siamrpn families, not {spec.family!r}")
    for name in ("mean", "std"):
        value = getattr(spec, name)
        _check(isinstance(value, tuple) and len(value) == 3 and all(_is_num(v) for v in value),
               f"{name} must be three finite numbers, got {value!r}")
    _check(all(v > 0 for v in spec.std), "std must be positive")
    _check(spec.channel_order in ("BGR", "RGB"), f"channel_order must be 'BGR' or 'RGB', got {spec.channel_order!r}")
    _check(isinstance(spec.long_term, bool), f"long_term must be true or false, got {spec.long_term!r}")
    _check(isinstance(spec.long_term_note, str) and len(spec.long_term_note) <= 2000,
           "long_term_note must be a string of at most 2000 characters")
    _check(spec.score_activation in ("softmax", "sigmoid"), "score_activation must be 'softmax' or 'sigmoid'")
    if spec.family == "siamrpn":
        _check(len(spec.anchor_ratios) > 0 and len(spec.anchor_scales) > 0,
               "a siamrpn spec needs anchor_ratios and anchor_scales")
        _check(all(_is_num(v) and v > 0 for v in spec.anchor_ratios + spec.anchor_scales),
               "anchor ratios and scales must be positive numbers")
    if spec.family == "siamfc":
        _check(spec.scale_num % 2 == 1, "siamfc scale_num must be odd")
    _check(spec.template_factor >= 0, "template_factor must be >= 0")
    _validate_memory(spec)
    if spec.calibration:
        from .runtime.confidence import check_calibration  # the runtime interprets it

        check_calibration(spec.calibration)


def _validate_memory(spec: TrackerSpec) -> None:
    """The template memory's constants: a token budget of 0 (off) or at least one template's tokens."""
    for name in ("memory_tokens", "memory_every"):
        value = getattr(spec, name)
        _check(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT_FIELD,
               f"{name} must be an integer in [0, {MAX_INT_FIELD}], got {value!r}")
    for name in ("memory_confidence", "memory_protected"):
        value = getattr(spec, name)
        _check(_is_num(value) and 0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value!r}")
    _check(spec.memory_every >= 1, "memory_every must be at least 1")
    if spec.memory_tokens:
        _check(spec.family == "vit", f"the template memory needs the vit family, not {spec.family!r}")
        _check(spec.memory_tokens >= spec.template_feat_size ** 2,
               f"memory_tokens must be 0 (off) or at least one template's {spec.template_feat_size ** 2} tokens, "
               f"got {spec.memory_tokens}")
