"""``edgetrack models``: the models bundled with this build, by name, with a one-line description."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the bundled models (names usable as Tracker(name) and --model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.registry import ALIASES, list_models

    models = list_models()
    if not models:
        print("this edgetrack build bundles no model; pass a checkpoint or exported folder path instead")
        return 0
    rows = []
    for name, text in models.items():
        aliases = [a for a, target in ALIASES.items() if target == name]
        rows.append((name + (f" ({', '.join(aliases)})" if aliases else ""), text or "-"))
    width = max(len(r[0]) for r in rows)
    for label, text in rows:
        print(f"{label:<{width}}  {text}")
    return 0
