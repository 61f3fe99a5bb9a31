"""Import the NanoTrack V1/V2/V3 teachers from ../shared/weights and export them to ONNX folders.

    python benchmarks/prepare_teachers.py [--shared ../shared] [--out runs/teachers]

Writes ``OUT/nanotrack_v{1,2,3}.safetensors`` and ``OUT/nanotrack_v{1,2,3}_onnx/``; skips what already exists.
Prints the folder of each, for ``--models name=path`` of the benchmark scripts.
"""
from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def prepare(shared: Path, out: Path) -> dict[str, Path]:
    from edgetrack.export import export_onnx
    from edgetrack.models.import_nanotrack import import_nanotrack_to_file
    from edgetrack.models.io import load_checkpoint

    folders = {}
    for version in (1, 2, 3):
        ckpt = out / f"nanotrack_v{version}.safetensors"
        onnx_dir = out / f"nanotrack_v{version}_onnx"
        if not ckpt.exists():
            pth = shared / "weights" / "nanotrack" / f"nanotrackv{version}" / f"nanotrackv{version}.pth"
            import_nanotrack_to_file(pth, ckpt)
        if not (onnx_dir / "search.onnx").exists():
            export_onnx(load_checkpoint(ckpt), onnx_dir)
        folders[f"nanotrack_v{version}"] = onnx_dir
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "teachers")
    args = parser.parse_args()
    folders = prepare(args.shared, args.out)
    print(",".join(f"{name}={path}" for name, path in folders.items()))


if __name__ == "__main__":
    main()
