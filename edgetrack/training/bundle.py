"""Install a trained student as edgetrack's bundled default model (package data under ``edgetrack/assets``).

    python -m edgetrack.training.bundle runs/tsskd_v2/student_dull.safetensors --note "TSsKD from NanoTrack V2"

Writes ``edgetrack/assets/default/template.onnx`` + ``search.onnx`` (the runtime needs nothing else) and
``model.safetensors`` (for ``edgetrack-export default`` and fine-tuning), plus ``provenance.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from ..data.fileio import atomic_write_text
from ..runtime.model_files import default_model_dir


def bundle(checkpoint: Path, note: str = "", target: Path | None = None) -> dict:
    from ..export import export_onnx
    from ..models.complexity import count_macs
    from ..models.io import load_checkpoint

    target = target or default_model_dir()
    net = load_checkpoint(checkpoint)
    result = export_onnx(net, target)
    shutil.copyfile(checkpoint, target / "model.safetensors")
    info = {
        "source_checkpoint": checkpoint.name,
        "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "spec_name": net.spec.name,
        "note": note,
        "parity_vs_torch": result.max_rel_diff,
        **count_macs(net),
        "files_bytes": {p.name: p.stat().st_size for p in sorted(target.glob("*")) if p.is_file()},
    }
    atomic_write_text(target / "provenance.json", json.dumps(info, indent=2))
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    print(json.dumps(bundle(args.checkpoint, args.note), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
