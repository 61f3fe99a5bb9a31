"""edgetrack's VitTrack against OpenCV's TrackerVit (the same zoo weights) and the NanoTrack teacher, one run.

    python benchmarks/vit_table.py [--vit runs/vit/vittrack.safetensors]
        [--teacher runs/teachers/nanotrack_v2.safetensors] [--models name=checkpoint,...] [--out runs/vit_table]

Held-out data as in ``students_table.py``: the validation sequences of the dev split plus the ``val`` rows of the
video pool, each at its own resolution. The VitTrack checkpoint is imported from the zoo ONNX file
(``edgetrack import vittrack``) when missing; it and the teacher (and any ``--models``) are exported to ONNX and
run on onnxruntime, one thread, in the same run as ``cv2.TrackerVit`` on the zoo file. Prints JSON and a table:
AUC overall and per source, precision, update ms (median), size, update time relative to TrackerVit; writes
them, the report and the success/precision plots under ``--out``, and checks the targets (AUC >= TrackerVit's,
update time <= 0.8x TrackerVit's).

``--exports`` instead exports the VitTrack checkpoint through ``edgetrack-export``'s pipeline (ONNX FP32/INT8,
OpenVINO FP32/FP16/INT8; calibrated on the dev split's train sequences, gated on its validation sequences) and
tracks every exported folder on its backend, one thread, as ``export_table.py`` does for the students.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from students_table import DEFAULT_TEACHER, aucs_of, held_out, resolve_model, run

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]
ZOO = ("weights", "vittrack", "object_tracking_vittrack_2023sep.onnx")
PEER = "opencv-vit"


def vit_checkpoint(path: Path) -> Path:
    """The imported VitTrack checkpoint, importing it from the zoo file when it is not there yet."""
    if not path.exists():
        from edgetrack.models.import_vittrack import import_vittrack_to_file

        path.parent.mkdir(parents=True, exist_ok=True)
        import_vittrack_to_file(shared_dir().joinpath(*ZOO), path)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vit", type=Path, default=REPO / "runs" / "vit" / "vittrack.safetensors",
                   help="edgetrack VitTrack checkpoint (imported from the zoo file when missing)")
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER), help="NanoTrack teacher ('none': leave it out)")
    p.add_argument("--models", default="", help="more name=checkpoint_or_folder,... (e.g. distilled students)")
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"))
    p.add_argument("--split", default="dev")
    p.add_argument("--shared", default=str(shared_dir()), help="folder the held-out set is read from")
    p.add_argument("--out", default=str(REPO / "runs" / "vit_table"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--exports", action="store_true", help="export formats x precisions of --vit instead")
    p.add_argument("--calib-pairs", type=int, default=300, help="with --exports: INT8 calibration pairs")
    p.add_argument("--max-drop", type=float, default=None, help="with --exports: the gate's AUC drop allowance")
    return p.parse_args(argv)


def exports(args: argparse.Namespace) -> int:
    """Every format x precision of the VitTrack checkpoint, gated, then tracked in one run."""
    import export_table as et

    from edgetrack.export.formats import detect_platform
    from edgetrack.training.split import load_split

    split = load_split(args.split)
    out = Path(args.out) / "exports"
    args.out = str(out)  # export_table's helpers write under args.out
    train = et.link_folder(Path(args.data), split["train"], out / "dev-train")
    val = et.link_folder(Path(args.data), split["val"], out / "dev-val")
    exported = et.export_model("vittrack", vit_checkpoint(args.vit), args, train, val, detect_platform())
    rows = et.table_rows(et.benchmark(exported, args, tuple(split["val"])), exported)
    print(json.dumps({"sequences": split["val"], "calibration": split["train"], "rows": rows,
                      "targets": et.targets(rows)}, indent=1))
    print(et.format_rows(rows))
    return 0


def factories(args: argparse.Namespace) -> list:
    from edgetrack.evaluation.bench import model_specs
    from edgetrack.evaluation.trackers import TrackerFactory, peer_factories

    pairs = [("vittrack", str(vit_checkpoint(args.vit)))]
    if args.teacher.lower() != "none":
        pairs.append(("nanotrack-teacher", args.teacher))
    pairs += model_specs(args.models)
    out = [TrackerFactory("edgetrack", model=resolve_model(path)[0], name=name, backend="onnxruntime", threads=1,
                          allow_ungated=True) for name, path in pairs]
    return out + peer_factories(f"vit={shared_dir().joinpath(*ZOO)}")


def by_group(entry: dict, held) -> dict[str, float]:
    """Mean AUC per source, per held-out part and aerial vs ground."""
    from edgetrack.evaluation.paired import group_means

    out: dict[str, float] = {}
    for labels in held.groupings().values():
        out.update(group_means(aucs_of(entry), labels))
    return out


def rows_of(report: dict, held) -> list[dict]:
    rows = []
    peer = report["trackers"].get(PEER, {}).get("overall", {})
    for name, entry in report["trackers"].items():
        o = entry["overall"]
        ratio = o["update_ms_p50"] / peer["update_ms_p50"] if o["update_ms_p50"] and peer.get("update_ms_p50") else None
        rows.append(dict(tracker=name, auc=o["success_auc"], precision=o["precision_20"],
                         by_source=by_group(entry, held), update_ms=o["update_ms_p50"], vs_trackervit=ratio,
                         size_mb=o.get("model_size_mb")))
    return sorted(rows, key=lambda r: -(r["auc"] if r["auc"] is not None else -1.0))


def targets(rows: list[dict]) -> dict:
    by = {r["tracker"]: r for r in rows}
    ours, peer = by.get("vittrack"), by.get(PEER)
    if not ours or not peer or None in (ours["auc"], peer["auc"], ours["update_ms"], peer["update_ms"]):
        return {}
    return {"auc_at_least_trackervit": ours["auc"] >= peer["auc"],
            "update_at_most_0.8x_trackervit": ours["update_ms"] <= 0.8 * peer["update_ms"]}


def format_rows(rows: list[dict], columns: list[str]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    head = ["tracker", "AUC", "P@20", *columns, "update ms p50", "x TrackerVit", "size MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["tracker"], f(r["auc"], ".3f"), f(r["precision"], ".3f"),
                 *(f(r["by_source"].get(c), ".3f") for c in columns), f(r["update_ms"], ".2f"),
                 f(r["vs_trackervit"], ".2f"), f(r["size_mb"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("EDGETRACK_SHARED", str(shared_dir()))
    if args.exports:
        return exports(args)
    from edgetrack.data.fileio import atomic_write_text

    trackers = factories(args)
    held = held_out(args.shared, args.split)
    report, paths = run(args, trackers, held.dataset)
    rows = rows_of(report, held)
    columns = list(dict.fromkeys(held.source.values())) + list(dict.fromkeys(held.part.values())) + [
        "aerial", "ground"]
    summary = {"sequences": sorted(held.names), "not_scored": dict(held.not_scored), "rows": rows,
               "targets": targets(rows)}
    outputs = {"vit_table.json": json.dumps(summary, indent=1), "vit_table.md": format_rows(rows, columns)}
    for name, text in outputs.items():  # printed and written: JSON, then the table
        print(text)
        atomic_write_text(Path(args.out) / name, text + "\n")
    print("\n".join(f"plot: {paths[k]}" for k in ("success", "precision") if k in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
