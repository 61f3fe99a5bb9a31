"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable
from contextlib import contextmanager

from ..errors import EdgeTrackError, InputError


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` -> four floats (commas or spaces)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise InputError(f"--bbox must be four numbers x,y,w,h, got {text!r}") from exc
    if len(values) != 4:
        raise InputError(f"--bbox must be four numbers x,y,w,h, got {len(values)}")
    return values  # type: ignore[return-value]


def plain_help(doc: str) -> str:
    """The first paragraph of a module docstring as plain text for ``--help``: reStructuredText roles
    (:mod:`x`) and literals (``x``) lose their markup."""
    text = doc.strip().split("\n\n")[0]
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``|`([^`]+)`", lambda m: m.group(1) or m.group(2), text)


def run_guarded(func: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command, turning edgetrack's errors, and paths the system refuses (a name too long, no permission,
    a full disk), into one clear line and exit status 2. SIGTERM is handled as Ctrl+C (exit status 130), so
    every ``finally`` runs and no temporary file is left behind."""
    try:
        with sigterm_as_interrupt():
            return func()
    except EdgeTrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        name = str(exc.filename) if exc.filename is not None else ""
        where = f": {name[:120]}{'...' if len(name) > 120 else ''}" if name else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl+C."""


@contextmanager
def sigterm_as_interrupt():
    """Within the block SIGTERM (what ``kill`` and ``systemctl stop`` send) raises :class:`Terminated`, a
    KeyboardInterrupt, so every ``finally`` runs and temporary files are removed as on Ctrl+C."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
