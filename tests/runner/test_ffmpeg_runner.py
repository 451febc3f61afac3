"""run() with real FFmpeg: progress, meaningful errors, cancel, timeout, list argv, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from vidmill.engine.ffmpeg import ffmpeg_exe
from vidmill.engine.probe import media_info, probe
from vidmill.errors import EncodeError
from vidmill.runner.ffmpeg import RunResult, meaningful_line, run

pytestmark = pytest.mark.integration


def ffmpeg_pids(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and b"ffmpeg" in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def long_encode(media, tmp_path):
    """An argv that takes ~55 s: -re reads the trailer at its own speed."""
    out = tmp_path / f"long-{uuid.uuid4().hex}.mp4"
    argv = [ffmpeg_exe(), "-y", "-re", "-i", str(media / "bbb_trailer_720p_55s_mp3.mp4"), "-vf", "scale=160:-2",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(out)]
    return argv, out


def test_progress_increases_and_ends_at_100(media, tmp_path):
    calls: list[float] = []
    out = tmp_path / "out.mp4"
    result = run([ffmpeg_exe(), "-y", "-re", "-i", str(media / "carphone_qcif_sar.mp4"), "-t", "2",
                  "-stats_period", "0.1", "-c:v", "libx264", "-preset", "ultrafast", str(out)],
                 duration_s=2.0, on_progress=calls.append)
    assert isinstance(result, RunResult) and result.returncode == 0
    assert 1.5 < result.elapsed < 15
    assert len(calls) >= 3, calls
    assert calls == sorted(calls) and len(set(calls)) == len(calls)
    assert calls[-1] == 100.0 and calls.count(100.0) == 1
    assert all(0.0 <= c <= 100.0 for c in calls)
    assert len(calls) <= result.elapsed * 2 + 2  # throttled to ~2 a second
    assert result.stderr_tail and len(result.stderr_tail) <= 50
    assert media_info(probe(out)).duration == pytest.approx(2.0, abs=0.2)


def test_progress_without_duration_reports_only_the_end(media, tmp_path):
    calls: list[float] = []
    run([ffmpeg_exe(), "-y", "-i", str(media / "carphone_qcif_sar.mp4"), "-t", "0.3", "-c", "copy",
         str(tmp_path / "o.mp4")], duration_s=None, on_progress=calls.append)
    assert calls == [100.0]


@pytest.mark.parametrize("args,message", [
    pytest.param(["-i", "{tmp}/nope.mp4", "{tmp}/o.mp4"], "Error opening input: No such file or directory",
                 id="missing-input"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-bogus", "1", "{tmp}/o.mp4"],
                 "Unrecognized option 'bogus'", id="unknown-option"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-t", "0.2", "-c:v", "libx264", "-crf", "abc",
                  "{tmp}/o.mp4"], 'Unable to parse "crf" option value "abc"', id="bad-encoder-option"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-t", "0.2", "-c:v", "libx264", "-preset", "bogus",
                  "{tmp}/o.mp4"], "invalid preset 'bogus'", id="bad-preset"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-vf", "nosuchfilter", "{tmp}/o.mp4"],
                 "No such filter: 'nosuchfilter'", id="unknown-filter"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-vf", "scale=foo", "{tmp}/o.mp4"],
                 "Invalid size 'foo'", id="invalid-filter-args"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-t", "0.2", "-c:v", "libx264", "-s", "175x144",
                  "{tmp}/o.mp4"], "width not divisible by 2 (175x144)", id="odd-width"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "-c:v", "nosuchenc", "{tmp}/o.mp4"],
                 "Unknown encoder 'nosuchenc'", id="unknown-encoder"),
    pytest.param(["-i", "{media}/corrupt_truncated.mkv", "{tmp}/o.mp4"], "Error opening input: End of file",
                 id="truncated-input"),
    pytest.param(["-i", "{media}/README.md", "{tmp}/o.mp4"],
                 "Error opening input: Invalid data found when processing input", id="not-media"),
    pytest.param(["-i", "{media}/carphone_qcif_sar.mp4", "{tmp}/no/dir/o.mp4"],
                 "Error opening output {tmp}/no/dir/o.mp4: No such file or directory", id="missing-output-dir"),
    pytest.param(["-v", "error", "-i", "{tmp}/nope.mp4", "{tmp}/o.mp4"],
                 "Error opening input: No such file or directory", id="caller-loglevel"),
])
def test_failure_raises_the_meaningful_line(media, tmp_path, args, message):
    argv = [ffmpeg_exe(), "-y", *(a.format(tmp=tmp_path, media=media) for a in args)]
    with pytest.raises(EncodeError) as err:
        run(argv, duration_s=1.0)
    assert err.value.message == message.format(tmp=tmp_path)
    assert err.value.returncode not in (0, None)
    assert err.value.argv[0] == argv[0] and err.value.argv[-1] == argv[-1]


def test_refusing_to_overwrite_is_not_a_success(media, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"old")
    # without -y or -n the runner adds -n (FFmpeg would block asking on stdin); FFmpeg then exits 0
    with pytest.raises(EncodeError, match="already exists"):
        run([ffmpeg_exe(), "-i", str(media / "carphone_qcif_sar.mp4"), "-t", "0.2", str(out)], duration_s=0.2,
            timeout_s=30)
    assert out.read_bytes() == b"old"


def test_cancel_stops_quickly_finalises_output_and_leaves_no_process(long_encode):
    argv, out = long_encode
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(EncodeError, match="cancelled"):
        run(argv, duration_s=55.0, cancel=cancel)
    assert time.monotonic() - start < 8
    assert ffmpeg_pids(out.name) == []
    # "q" lets FFmpeg write the moov atom: what was encoded so far is a playable file
    assert 0.5 < media_info(probe(out)).duration < 8


def test_an_exception_from_the_progress_callback_stops_ffmpeg_and_is_raised(long_encode):
    """The pipeline raises LeaseLost there: a job that lost its lease must stop encoding, not go on."""
    argv, out = long_encode

    class Lost(RuntimeError):
        pass

    calls = []

    def on_progress(pct):
        calls.append(pct)
        if len(calls) == 2:
            raise Lost("job is no longer ours")

    start = time.monotonic()
    with pytest.raises(Lost, match="no longer ours"):
        run(argv, duration_s=55.0, on_progress=on_progress)
    assert time.monotonic() - start < 10
    assert len(calls) == 2  # not called again once it raised
    assert ffmpeg_pids(out.name) == []


def test_timeout(long_encode):
    argv, out = long_encode
    start = time.monotonic()
    with pytest.raises(EncodeError) as err:
        run(argv, duration_s=55.0, timeout_s=1)
    assert err.value.message == "FFmpeg timed out after 1 s"
    assert time.monotonic() - start < 8
    assert ffmpeg_pids(out.name) == []


def test_argv_is_a_list_never_a_shell(media, tmp_path):
    src = tmp_path / "-in put; $(touch pwned).mp4"
    src.write_bytes((media / "carphone_qcif_sar.mp4").read_bytes())
    result = run([ffmpeg_exe(), "-y", "-i", f"file:{src.name}", "-t", "0.3", "-c", "copy",
                  "file:-out put 'x'.mp4"], duration_s=0.3, cwd=tmp_path)
    assert result.returncode == 0
    assert media_info(probe(tmp_path / "-out put 'x'.mp4")).width == 176
    assert not (tmp_path / "pwned").exists()


def test_meaningful_line_without_level_tags():
    lines = ["  Stream #0:0: Video: h264", "[h264 @ 0x55d0] Something broke badly",
             "[vf#0:0 @ 0x55d1] Task finished with error code: -22 (Invalid argument)", "Conversion failed!", ""]
    assert meaningful_line(lines, 1) == "Something broke badly"
    assert meaningful_line([], -9) == "FFmpeg was killed by SIGKILL"
    assert meaningful_line(["", "Conversion failed!"], 1) == "FFmpeg exited with code 1"


def test_ffmpeg_dies_with_the_process_that_started_it(long_encode, tmp_path):
    argv, out = long_encode
    script = textwrap.dedent(f"""
        from vidmill.runner.ffmpeg import run
        print("starting", flush=True)
        run({argv!r}, duration_s=55.0, timeout_s=120)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "starting"
        assert wait_until(lambda: ffmpeg_pids(out.name), 10), "FFmpeg never started"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert wait_until(lambda: not ffmpeg_pids(out.name), 5), "FFmpeg outlived its parent"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in ffmpeg_pids(out.name):
            os.kill(pid, signal.SIGKILL)
