"""The `vidmill` command as a user runs it: doctor, transcode without a server, projects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import streams

pytestmark = pytest.mark.integration


def _vidmill(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "vidmill.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_doctor_reports_engine_and_database(tmp_path):
    out = _vidmill("doctor", env={"VIDMILL_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) >= {"version", "ffmpeg", "ffmpeg_version", "encoders", "database", "data_dir"}
    assert Path(report["ffmpeg"]).is_absolute() and Path(report["ffmpeg"]).exists()
    assert report["encoders"]["libx264"] and report["encoders"]["libvpx-vp9"]
    assert report["database"]["ok"] is True
    assert report["data_dir"] == str(tmp_path.resolve())
    # this box has no NVIDIA GPU: the trial encode fails, so Octet jobs run x264
    nvenc = report["h264_nvenc"]
    assert (nvenc["works"], nvenc["used"], nvenc["setting"]) == (False, False, "auto") and nvenc["detail"]


def test_doctor_fails_on_a_broken_database(tmp_path):
    out = _vidmill("doctor", env={"VIDMILL_DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/x"})
    assert out.returncode == 1
    assert json.loads(out.stdout)["database"]["ok"] is False


def test_transcode_runs_the_engine_without_a_server(tmp_path, media):
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"query": {"format": [
        {"output": "mp4", "size": "320x180", "duration": 1},
        {"output": "metadata"},
    ]}}))
    out = _vidmill("transcode", str(media / "bbb_720p_5s_aac51.mp4"), "--query", str(q), "--out",
                   str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    paths = [Path(p) for p in out.stdout.split()]
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    info = streams(paths[0])
    assert (info["video"]["width"], info["video"]["height"]) == (320, 180)
    assert json.loads(paths[1].read_text())["streams"]
    assert "100.0%" in out.stderr  # the progress bar reached the end


def test_transcode_reports_bad_queries_clearly(tmp_path, media):
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"format": [{"output": "mp4", "size": "huge"}]}))
    out = _vidmill("transcode", str(media / "carphone_qcif_sar.mp4"), "--query", str(q), "--out", str(tmp_path))
    assert out.returncode == 1 and "size" in out.stderr


def test_projects_create_and_list(tmp_path):
    env = {"VIDMILL_DATA_DIR": str(tmp_path)}
    made = _vidmill("projects", "create", "acme", env=env)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    listed = json.loads(_vidmill("projects", "list", env=env).stdout)
    acme = next(p for p in listed if p["name"] == "acme")
    assert acme["keys"] == [key[:6] + "…"]  # only a prefix: keys are stored hashed


@pytest.mark.parametrize(
    "args, env, message",
    [
        pytest.param(["projects", "create", "twice"], {}, "a project named 'twice' exists already", id="project-twice"),
        pytest.param(["projects", "add-key", "nope"], {}, "no project named 'nope'", id="add-key-unknown"),
        pytest.param(["profiles", "add", "--name", "x", "--file", "/nonexistent.json"], {},
                     "cannot read /nonexistent.json", id="profile-file-missing"),
        pytest.param(["deliveries", "list", "f" * 32], {}, "task token not found", id="deliveries-unknown-task"),
        pytest.param(["deliveries", "redeliver", "f" * 32], {}, "needs the TOKEN and the delivery ID",
                     id="redeliver-without-id"),
        pytest.param(["projects", "list"], {"VIDMILL_PORT": "abc"}, "bad setting: VIDMILL_PORT", id="bad-env"),
        pytest.param(["projects", "list"], {"VIDMILL_DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/x"},
                     "OperationalError", id="database-down"),
        pytest.param(["nosuchcommand"], {}, "invalid choice: 'nosuchcommand'", id="unknown-command"),
        pytest.param(["serve", "--port", "70000"], {}, "bad setting: VIDMILL_PORT", id="serve-bad-port"),
        pytest.param(["deliveries", "redeliver", "t", "notanumber"], {}, "invalid int value", id="bad-id"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(tmp_path, args, env, message):
    env = {"VIDMILL_DATA_DIR": str(tmp_path), **env}
    if args[:3] == ["projects", "create", "twice"]:
        assert _vidmill(*args, env=env).returncode == 0
    out = _vidmill(*args, env=env)
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("vidmill: "), out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_transcode_makes_an_hls_ladder_with_the_server_pipeline(tmp_path, media):
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"format": [{"output": "advanced_hls", "segment_duration": 2, "duration": 2,
                                         "stream": [{"resolution": 144}, {"resolution": 96}]}]}))
    out = _vidmill("transcode", str(media / "bbb_720p_5s_aac51.mp4"), "--query", str(q), "--out",
                   str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    master = Path(out.stdout.strip())
    assert master == tmp_path / "out" / "0-advanced_hls" / "playlist.m3u8"
    assert "video_2/chunklist.m3u8" in master.read_text()
    assert (master.parent / "video_2" / "segment_00000.ts").is_file()
    assert (master.parent / "audio_1" / "chunklist.m3u8").is_file()


def test_serve_on_a_taken_port_says_so(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _vidmill("serve", "--port", str(port), env={"VIDMILL_DATA_DIR": str(tmp_path)})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr == f"vidmill: cannot listen on 127.0.0.1:{port}: Address already in use\n"
