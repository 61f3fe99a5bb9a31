"""``edgetrack-export MODEL --format onnx --out DIR``: turn a checkpoint into deployable files."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ..cli.common import run_guarded
from ..errors import InputError


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    needs_gpu: bool
    exporter: str


FORMATS = (ExportFormat("onnx", ".onnx", ("fp32",), False, "torch.onnx (TorchScript exporter) + onnxslim"),)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgetrack-export", description="Export a tracker to deployable files.")
    p.add_argument("model", nargs="?", default="default",
                   help="edgetrack checkpoint (.safetensors), or 'default' for the bundled default student")
    p.add_argument("--format", default="onnx", choices=[f.name for f in FORMATS])
    p.add_argument("--out", default=None, help="output folder (default: <model>_<format>)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (TensorRT 8.x takes up to 17)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis to 1")
    return p


def run(args: argparse.Namespace) -> int:
    from ..models.io import load_checkpoint
    from .onnx_export import export_onnx

    model_path = Path(args.model)
    if args.model == "default":
        from ..runtime.model_files import default_model_dir

        model_path = default_model_dir() / "model.safetensors"
        if not model_path.exists():
            raise InputError("no default model is bundled with this build; give a checkpoint")
    if model_path.suffix != ".safetensors":
        raise InputError(f"{model_path}: edgetrack-export takes an edgetrack checkpoint (.safetensors)")
    if args.out:
        out = Path(args.out)
    elif args.model == "default":
        out = Path.cwd() / f"default_{args.format}"
    else:
        out = model_path.with_name(f"{model_path.stem}_{args.format}")
    net = load_checkpoint(model_path)
    result = export_onnx(net, out, opset=args.opset, simplify=not args.no_simplify,
                         dynamic_batch=not args.static_batch)
    print(f"wrote {result.template} and {result.search}")
    for name, diff in result.max_rel_diff.items():
        print(f"  parity vs torch: {name} max |diff| / scale = {diff:.2e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
