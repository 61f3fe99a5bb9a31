"""Load-time checks of a model against its spec, and of network outputs (numpy only).

A graph whose inputs or outputs do not have the sizes its spec promises (a hand-edited spec, graphs of another
model) is a :class:`ModelError` at load, not a raw onnxruntime/numpy error on the first frame; a network that
gives NaN or infinity is a :class:`ModelError`, never a NaN box.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import EdgeTrackError, ModelError
from ..spec import TrackerSpec


def require_finite(arrays, what: str, where: object) -> None:
    """ModelError when any of ``arrays`` holds NaN or infinity."""
    for i, arr in enumerate(arrays):
        # a float64 sum of float32 values cannot overflow: it is finite exactly when every value is
        if not math.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64)):
            raise ModelError(f"{where}: the {what} graph gave non-finite values (NaN/inf) in output {i}; the "
                             "model's weights or its export are broken (re-export it, or check it with "
                             "edgetrack-export's accuracy gate)")


def _expected_outputs(spec: TrackerSpec) -> list[tuple[str, int | None, int]]:
    """(name, channels or None when free, spatial size) of the search graph's leading outputs."""
    s = spec.score_size
    if spec.family == "siamfc":
        return [("response", 1, s)]
    if spec.family == "vit":
        return [("score", 1, s), ("size", 2, s), ("offset", 2, s)]
    k = spec.num_anchors if spec.family == "siamrpn" else 1
    cls_channels = k if spec.score_activation == "sigmoid" else 2 * k
    return [("cls", cls_channels, s), ("reg", 4 * k, s)]


def _run(fn, what: str, where: object, shape_text: str):
    try:
        return fn()
    except EdgeTrackError:
        raise
    except Exception as exc:  # vendor runtimes raise their own types on shape mismatches
        raise ModelError(f"{where}: the {what} graph does not accept the spec's input {shape_text}: {exc}. "
                         "The spec does not describe these graphs; export the model again") from exc


def check_graphs(backend, spec: TrackerSpec, where: object, n_search: int = 1) -> None:
    """Run both graphs once on zeros of the spec's sizes and compare what comes out with the spec."""
    e, i = spec.exemplar_size, spec.instance_size
    z = np.zeros((1, 3, e, e), dtype=np.float32)
    zfs = _run(lambda: backend.run_template(z), "template", where, f"1x3x{e}x{e}")
    require_finite(zfs, "template", where)
    x = np.zeros((n_search, 3, i, i), dtype=np.float32)
    rep = [np.repeat(np.asarray(zf), n_search, axis=0) for zf in zfs]
    outs = _run(lambda: backend.run_search(x, rep), "search", where, f"{n_search}x3x{i}x{i}")
    require_finite(outs, "search", where)
    wanted = _expected_outputs(spec)
    if len(outs) < len(wanted):
        raise ModelError(f"{where}: the search graph gives {len(outs)} output(s); a {spec.family} spec needs "
                         f"{' and '.join(w[0] for w in wanted)}")
    for (name, channels, size), out in zip(wanted, outs):
        shape = tuple(np.shape(out))
        ok = len(shape) == 4 and shape[0] == n_search and shape[2:] == (size, size)
        ok = ok and (channels is None or shape[1] == channels)
        if not ok:
            want = f"{n_search}x{channels if channels is not None else 'C'}x{size}x{size}"
            raise ModelError(f"{where}: the search graph's {name} output is {'x'.join(map(str, shape))} but the "
                             f"spec (score_size {spec.score_size}) says {want}; the spec does not describe "
                             "these graphs: export the model again")
