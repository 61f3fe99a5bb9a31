"""``edgetrack track`` with field sources and outputs, and the small CLI defects (demo, import)."""
import json
import os
import signal
import threading

import cv2
import numpy as np
import pytest

from edgetrack.cli.main import main
from edgetrack.video import natural_key, open_source


def _folder(tmp_path, frames, names):
    folder = tmp_path / "seq"
    folder.mkdir()
    for name, frame in zip(names, frames):
        cv2.imwrite(str(folder / name), frame)
    return folder


def test_image_folders_are_read_in_natural_order(tmp_path):
    frames = [np.full((32, 40, 3), 10 * i, np.uint8) for i in range(12)]
    folder = _folder(tmp_path, frames, [f"{i + 1}.png" for i in range(12)])
    got = [int(f[0, 0, 0]) for f in open_source(folder).frames()]
    assert got == [10 * i for i in range(12)]
    assert sorted(["img10.jpg", "img9.jpg", "img100.jpg"], key=natural_key) == ["img9.jpg", "img10.jpg", "img100.jpg"]


@pytest.mark.parametrize("url", ["rtsp://user:pw@127.0.0.1:1/stream", "http://127.0.0.1:1/video.mjpg"])
def test_stream_urls_are_not_paths(url, tiny_onnx, capsys):
    rc = main(["track", url, "--bbox", "1,2,3,4", "--model", str(tiny_onnx), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot open stream" in err and "not found" not in err and "pw@" not in err


def test_gstreamer_pipeline_is_opened_as_a_stream():
    from edgetrack.errors import InputError

    with pytest.raises(InputError, match="gstreamer"):
        open_source("videotestsrc num-buffers=1 ! videoconvert ! fakesinkxx")


@pytest.mark.parametrize("out", ["a.gif", "a.png", "a.jpg", "a.txt"])
def test_out_container_rejected_before_tracking(out, tiny_onnx, clip, tmp_path, capsys):
    folder = _folder(tmp_path, clip[0], [f"{i}.png" for i in range(len(clip[0]))])
    rc = main(["track", str(folder), "--bbox", "10,10,20,20", "--model", str(tiny_onnx), "--out",
               str(tmp_path / out), "--quiet"])
    assert rc == 2 and "container" in capsys.readouterr().err
    assert not (tmp_path / out).exists()


def test_boxes_to_a_folder_or_unwritable_path_fail_before_tracking(tiny_onnx, clip, tmp_path, capsys):
    folder = _folder(tmp_path, clip[0], [f"{i}.png" for i in range(len(clip[0]))])
    base = ["track", str(folder), "--bbox", "10,10,20,20", "--model", str(tiny_onnx), "--quiet"]
    assert main(base + ["--boxes", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(base + ["--jsonl", str(blocker / "sub" / "r.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(base + ["--max-frames", "0"]) == 2
    assert "--max-frames" in capsys.readouterr().err


def test_jsonl_state_device_and_max_frames(tiny_onnx, clip, tmp_path, capsys):
    frames, gt = clip
    folder = _folder(tmp_path, frames, [f"{i + 1}.png" for i in range(len(frames))])
    jsonl, out = tmp_path / "r.jsonl", tmp_path / "v.mkv"
    assert main(["track", str(folder), "--bbox", ",".join(map(str, gt[0])), "--model", str(tiny_onnx),
                 "--device", "cpu", "--max-frames", "5", "--jsonl", str(jsonl), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(5))
    assert rows[0]["state"] == "INIT" and {r["state"] for r in rows[1:]} <= {"TRACKING", "UNCERTAIN", "LOST"}
    assert all(len(r["box"]) == 4 and 0 <= r["score"] <= 1 and 0 <= r["confidence"] <= 1 for r in rows)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert "CPUExecutionProvider" in capsys.readouterr().out
    assert main(["track", str(folder), "--bbox", "1,2,3,4", "--model", str(tiny_onnx), "--device", "xyz"]) == 2


def test_interrupt_keeps_the_video_and_boxes_so_far(tiny_onnx, clip, tmp_path, monkeypatch, capsys):
    from edgetrack.runtime.tracker import Tracker

    frames, gt = clip
    folder = _folder(tmp_path, frames, [f"{i + 1}.png" for i in range(len(frames))])
    real_update, calls = Tracker.update, []

    def update(self, frame):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # handled as an interrupt on this (the main) thread
        return real_update(self, frame)

    monkeypatch.setattr(Tracker, "update", update)
    out, boxes = tmp_path / "v.mp4", tmp_path / "b.txt"
    assert threading.current_thread() is threading.main_thread()
    rc = main(["track", str(folder), "--bbox", ",".join(map(str, gt[0])), "--model", str(tiny_onnx), "--out",
               str(out), "--boxes", str(boxes), "--quiet"])
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    kept = np.loadtxt(boxes, delimiter=",")
    assert 1 <= len(kept) < len(frames)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == len(kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt", "seq", "v.mp4"]


def test_show_or_missing_bbox_without_gui_says_what_to_install(tiny_onnx, clip, tmp_path, capsys, monkeypatch):
    from edgetrack import live

    folder = _folder(tmp_path, clip[0], [f"{i}.png" for i in range(len(clip[0]))])
    monkeypatch.setattr(live, "gui_problem", lambda: "this OpenCV build has no GUI (it is the headless build)")
    assert main(["track", str(folder), "--model", str(tiny_onnx), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pip uninstall -y opencv-contrib-python-headless && pip install opencv-contrib-python" in err
    monkeypatch.setattr(live, "gui_problem", lambda: "no display (DISPLAY/WAYLAND_DISPLAY is not set)")
    assert main(["track", str(folder), "--bbox", "1,2,3,4", "--show", "--model", str(tiny_onnx)]) == 2
    assert "no display" in capsys.readouterr().err


def test_interactive_selection_and_show_with_a_gui(tiny_onnx, clip, tmp_path, capsys, monkeypatch):
    from edgetrack import live

    frames, gt = clip
    folder = _folder(tmp_path, frames, [f"{i}.png" for i in range(len(frames))])
    shown = []
    monkeypatch.setattr(live, "gui_problem", lambda: None)
    monkeypatch.setattr(live.cv2, "selectROI", lambda *a: tuple(int(v) for v in gt[0]))
    monkeypatch.setattr(live.cv2, "imshow", lambda name, frame: shown.append(frame.shape))
    monkeypatch.setattr(live.cv2, "waitKey", lambda ms: ord("q") if len(shown) == 3 else -1)
    monkeypatch.setattr(live.cv2, "destroyAllWindows", lambda: None)
    boxes = tmp_path / "b.txt"
    assert main(["track", str(folder), "--show", "--model", str(tiny_onnx), "--boxes", str(boxes), "--quiet"]) == 0
    rows = np.loadtxt(boxes, delimiter=",")
    assert len(shown) == 3 and len(rows) == 3 and np.allclose(rows[0, :4], np.round(gt[0]))


class _FakeCapture:
    """A live source that produces frames faster than they are consumed."""

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0
        self.consumed = threading.Event()

    def isOpened(self):
        return True

    def read(self):
        if self.i >= self.n:
            return False, None
        if self.i == 1:  # hold frame 1 back until the consumer took frame 0, then produce the rest at once
            self.consumed.wait(10)
        self.i += 1
        return True, np.full((8, 8, 3), self.i, np.uint8)

    def release(self):
        pass


def test_realtime_reader_drops_frames_when_behind_and_counts_them():
    from edgetrack.live import LatestFrames
    from edgetrack.video import Source

    cap = _FakeCapture(50)

    class Src(Source):
        def capture(self):
            return cap

    reader = LatestFrames(Src("fake", 30.0, None, "camera", 0))
    got = []
    for frame in reader:
        got.append(int(frame[0, 0, 0]))
        if len(got) == 1:
            cap.consumed.set()
            reader._thread.join(10)  # let the producer finish everything while we are "busy"
    reader.close()
    assert got[0] == 1 and got[-1] == 50
    assert reader.dropped == 50 - len(got) and reader.dropped > 0


def test_demo_needs_two_frames_and_import_writes_what_out_says(tmp_path, capsys):
    assert main(["demo", "--frames", "1"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert main(["import", "nanotrack", str(tmp_path / "w.pth"), "--out", str(tmp_path / "v2.ckpt")]) == 2
    assert "v2.safetensors" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["/proc/x/b.txt", "/proc/b.txt", "missing"])
def test_boxes_that_cannot_be_written_fail_before_tracking(where, tiny_onnx, clip, tmp_path, capsys):
    folder = _folder(tmp_path, clip[0], [f"{i}.png" for i in range(len(clip[0]))])
    target = str(tmp_path / "new" / "b.txt") if where == "missing" else where
    rc = main(["track", str(folder), "--bbox", "10,10,20,20", "--model", str(tiny_onnx), "--boxes", target,
               "--quiet"])
    out = capsys.readouterr()
    assert rc == 2 and f"--boxes {target}: cannot write into" in out.err, out.err
    assert "tracked" not in out.out  # refused before the model loaded
    if where == "missing":  # no folder is made for an output file: the message says to create it
        assert "does not exist (create it first)" in out.err and not (tmp_path / "new").exists()


def test_annotated_writer_keeps_its_temporary_file_beside_the_target_and_removes_it(tmp_path, monkeypatch):
    import tempfile

    from edgetrack.video import AnnotatedWriter

    before = set(os.listdir(tempfile.gettempdir()))
    writer = AnnotatedWriter(tmp_path / "v.mp4", 10.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    hidden = [p.name for p in tmp_path.iterdir()]
    assert len(hidden) == 1 and hidden[0].startswith(".edgetrack-video-")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)  # a rename that fails for any reason
    with pytest.raises(PermissionError):
        writer.close()
    assert list(tmp_path.iterdir()) == []
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


def test_sigterm_runs_every_finally_and_exits_130(capsys):
    from edgetrack.cli.common import run_guarded

    cleaned = []

    def command():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            return 0
        finally:
            cleaned.append(True)

    assert run_guarded(command, "stopped") == 130 and cleaned == [True]
    assert "stopped" in capsys.readouterr().err
