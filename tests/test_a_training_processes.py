"""Training in child processes: torchrun with two gloo ranks, and Ctrl+C during a run (the step finishes, the
checkpoint keeps it). Kept in a file that sorts first: in one long pytest process, the test process itself has
crashed (SIGSEGV from the kernel inside its allocator) while waiting on these children after about 385 other tests,
though every test file passes on its own. The cause is not found yet."""
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")


def test_torchrun_two_processes_gloo(tmp_path, tiny_checkpoint):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "edgetrack.training.cli", "distill", "--teacher", str(tiny_checkpoint), "--out", str(tmp_path / "ddp"),
           "--steps", "2", "--synthetic", "2", "--set", "threads=1", "--set", "data.batch_size=2",
           "--set", "data.workers=0", "--set", "data.samples_per_epoch=4", "--set", "checkpoint_every=2"]
    # a session of its own: the launcher's signals to its process group never reach the test runner
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "ddp" / "student_dull.safetensors").exists()
    assert '"steps": 2' in out.stdout


def _interrupted_run(tmp_path, tiny_checkpoint, workers: int, interrupt) -> None:
    """Start a long run, ``interrupt(proc)`` between two checkpoints; the step finishes and the checkpoint keeps
    it (the log's last row is the checkpoint's step)."""
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgetrack.training.cli", "distill", "--teacher", str(tiny_checkpoint),
           "--synthetic", "2", "--out", str(out), "--steps", "100000",
           "--set", "checkpoint_every=3", "--set", "log_every=1", "--set", "threads=1",
           "--set", "data.batch_size=2", "--set", f"data.workers={workers}", "--set", "data.samples_per_epoch=6"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log, deadline = out / "log.csv", time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "state.pt").exists():
        time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
    time.sleep(0.5)  # somewhere between two checkpoints
    interrupt(proc)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "resume" in err, err[-2000:]
    assert "killed by signal" not in err
    state = torch.load(out / "state.pt", weights_only=False)
    rows = log.read_text().strip().splitlines()
    assert state["step"] >= 2 and int(rows[-1].split(",")[0]) == state["step"]


def test_ctrl_c_finishes_the_step_and_keeps_it(tmp_path, tiny_checkpoint):
    import signal

    _interrupted_run(tmp_path, tiny_checkpoint, 0, lambda proc: proc.send_signal(signal.SIGINT))


def test_sigterm_to_the_process_group_with_loader_workers(tmp_path, tiny_checkpoint):
    """What ``timeout``, a terminal's Ctrl+C and service managers do: signal every process of the group, the
    data loader's workers included; the workers ignore it and the main process still finishes and saves."""
    import os
    import signal

    _interrupted_run(tmp_path, tiny_checkpoint, 1, lambda proc: os.killpg(proc.pid, signal.SIGTERM))
