"""``edgetrack import nanotrack PATH.pth --out FILE``: convert a teacher checkpoint (needs edgetrack[train]);
``edgetrack import vittrack FILE.onnx --out FILE``: OpenCV zoo's VitTrack (needs edgetrack[export])."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import SUFFIX
from ..errors import InputError, missing_extra
from ..video import check_writable_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert third-party tracker weights into an edgetrack checkpoint")
    p.add_argument("kind", choices=["nanotrack", "pysot-siamrpn", "vittrack"], help="what the weights are")
    p.add_argument("path", help="the authors' .pth file (vittrack: OpenCV zoo's VitTrack .onnx file)")
    p.add_argument("--out", required=True, help="edgetrack checkpoint to write (.safetensors)")
    p.add_argument("--version", type=int, choices=[1, 2, 3], default=None,
                   help="NanoTrack version (detected from the keys when omitted)")
    p.add_argument("--head", choices=["dwxcorr", "upchannel"], default="dwxcorr",
                   help="pysot SiamRPN head type")
    p.set_defaults(func=run)


def check_out(out: str) -> Path:
    """The checkpoint path exactly as given: it must end in .safetensors (never renamed behind the user's back)."""
    path = Path(out)
    if path.suffix != SUFFIX:
        raise InputError(f"--out {out}: edgetrack checkpoints are {SUFFIX} files; use e.g. --out "
                         f"{path.with_suffix(SUFFIX).name}")
    return check_writable_file(path, "--out")


def run(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise missing_extra("torch", "train", "importing weights") from exc
    if args.kind == "vittrack":
        from ..models.import_vittrack import import_vittrack_to_file

        path, diff = import_vittrack_to_file(args.path, out)
        print(f"wrote {path} (outputs within {diff:.1e} of the ONNX graph)")
        return 0
    if args.kind == "nanotrack":
        from ..models.import_nanotrack import import_nanotrack_to_file

        path = import_nanotrack_to_file(args.path, out, args.version)
    else:
        from ..models.io import save_checkpoint
        from ..models.registry import build_model
        from ..models.siamrpn import load_pysot_state_dict, siamrpn_spec

        model = build_model(siamrpn_spec(head=args.head))
        load_pysot_state_dict(model, args.path)
        path = save_checkpoint(model.eval(), out, {"source": f"pysot checkpoint {args.path}"})
    print(f"wrote {path}")
    return 0
