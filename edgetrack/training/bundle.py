"""Install a trained student as a bundled model (package data under ``edgetrack/assets/<name>``).

    python -m edgetrack.training.bundle runs/pruned_v2/stage2/student_fast.safetensors --note "..."
    python -m edgetrack.training.bundle runs/pruned_v2/stage2/student_accurate.safetensors --name accurate
    python -m edgetrack.training.bundle runs/fast_budget/student_fast_step1000.safetensors --search-size 239

Writes ``edgetrack/assets/<name>/template.onnx`` + ``search.onnx`` (the runtime needs nothing else) and
``model.safetensors`` (for ``edgetrack-export <name>`` and fine-tuning), plus ``provenance.json``
(``--extra FILE.json`` adds measured figures and reproducing commands to it). ``default`` is ``Tracker()``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from ..cli.common import plain_help
from ..data.fileio import atomic_write_text
from ..runtime.model_files import default_model_dir


def bundle(checkpoint: Path, note: str = "", target: Path | None = None, extra: dict | None = None,
           search_size: int | None = None) -> dict:
    """Export ``checkpoint`` into ``target`` (default: the bundled default's folder); ``search_size`` runs the
    network on search crops of that size (:func:`edgetrack.models.io.with_search_size`). Everything is written
    to a hidden folder beside ``target`` first and moved in once complete: a bad checkpoint or size, or a run
    stopped halfway, leaves the bundled model as it was."""
    from ..export.swap import staging_folder, swap_in
    from ..models.io import load_checkpoint, with_search_size

    target = target or default_model_dir()
    loaded = load_checkpoint(checkpoint)
    net = with_search_size(loaded, search_size)
    staging = staging_folder(target)
    try:
        info = _write(checkpoint, net, net is loaded, staging, note, extra)
        swap_in(staging, target, ())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def _write(checkpoint: Path, net, unchanged: bool, folder: Path, note: str, extra: dict | None) -> dict:
    """Graphs, checkpoint and ``provenance.json`` of one bundled model in ``folder``; returns the provenance."""
    from ..export import export_onnx
    from ..models.complexity import count_macs
    from ..models.io import save_checkpoint

    result = export_onnx(net, folder)
    if unchanged:
        shutil.copyfile(checkpoint, folder / "model.safetensors")
    else:  # the checkpoint carries the spec the graphs were exported with
        save_checkpoint(net, folder / "model.safetensors")
    info = {
        "source_checkpoint": checkpoint.name,
        "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "spec_name": net.spec.name,
        "search_size": net.spec.instance_size,
        "note": note,
        "parity_vs_torch": result.max_rel_diff,
        **count_macs(net),
        "files_bytes": {p.name: p.stat().st_size for p in sorted(folder.glob("*")) if p.is_file()},
        **(extra or {}),
    }
    atomic_write_text(folder / "provenance.json", json.dumps(info, indent=2))
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=plain_help(__doc__))
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--note", default="", help="one line: what the model is (shown by `edgetrack models`)")
    p.add_argument("--name", default="default", help="bundled model name (folder under edgetrack/assets)")
    p.add_argument("--extra", type=Path, default=None, help="JSON object merged into provenance.json")
    p.add_argument("--search-size", type=int, default=None,
                   help="search crop side the model tracks with (default: the checkpoint's; a multiple of the "
                        "stride away from it)")
    args = p.parse_args(argv)
    from ..cli.common import run_guarded
    from ..runtime.registry import bundled_dir

    def run() -> int:
        extra = _read_extra(args.extra) if args.extra else None
        info = bundle(args.checkpoint, args.note, bundled_dir(args.name), extra, args.search_size)
        print(json.dumps(info, indent=2))
        return 0

    return run_guarded(run)


def _read_extra(path: Path) -> dict:
    from ..errors import InputError

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--extra {path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"--extra {path}: must hold a JSON object, got {type(data).__name__}")
    return data


if __name__ == "__main__":
    sys.exit(main())
