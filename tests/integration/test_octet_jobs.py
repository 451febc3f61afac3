"""An Octet client against a real vidmill server with real media: renditions land in S3 (moto) at dest_path
with the asked size and bitrate, no audio unless opted in, and the JSON webhook arrives."""

from __future__ import annotations

import json
import time

import av
import httpx
import pytest

from tests.integration.helpers import macroblock_qps, streams
from tests.servers import VidmillServer
from tests.storage_servers import MotoS3

pytestmark = pytest.mark.integration
KEY = "octetkey0123456789"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoS3(tmp_path_factory.mktemp("octet-moto"))
    server.client().create_bucket(Bucket="octet-out")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def octet_server(tmp_path_factory, moto):
    host = moto.endpoint.split("://", 1)[1]
    env = {"VIDMILL_OCTET_S3_ENDPOINT": moto.endpoint, "VIDMILL_STORAGE_PLAIN_HTTP_HOSTS": host}
    with VidmillServer(tmp_path_factory.mktemp("octet"), api_key=KEY, env=env) as s:
        yield s


def _job(origin, moto, outputs, **extra) -> dict:
    return {"input": {"url": f"{origin.url}/bbb_720p_5s_aac51.mp4"},
            "destination": {"provider": "s3", "region": "us-east-1", "bucket": "octet-out",
                            "creds": {"access_key_id": moto.key, "secret_access_key": moto.secret}},
            "outputs": outputs, **extra}


def _wait(client, job_id, timeout=240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v0/jobs/{job_id}").json()
        if body["status"] in ("complete", "error"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"job did not finish: {body}")


def _object(moto, key, tmp_path):
    path = tmp_path / key.replace("/", "_")
    moto.client().download_file("octet-out", key, str(path))
    return path


def test_octet_job_lands_in_s3(octet_server, moto, origin, receiver, tmp_path):
    outputs = [
        {"codec": "h264", "resolution": "-1x360", "dest_path": "renditions/v360.mp4", "bitrate_kbps": "600",
         "rc": "cbr", "preset": "fast", "profile": "main", "level": "4.1", "coder": "cabac"},
        {"codec": "h264", "resolution": "426x240", "dest_path": "renditions/v240.mp4", "bitrate_kbps": 300,
         "rc": "vbr_hq", "scale_interp_algo": "lanczos", "preset": "hq", "profile": "baseline", "coder": "cavlc"},
    ]
    with httpx.Client(base_url=octet_server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        r = c.post("/v0/jobs/create", json=_job(origin, moto, outputs, callback=f"{receiver.url}?d=octet"))
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]
        assert list(r.json()) == ["job_id"]
        done = _wait(c, job_id)
    assert done["status"] == "complete", done
    for out, asked_h, asked_w, kbps in ((done["outputs"][0], 360, 640, 600), (done["outputs"][1], 240, 426, 300)):
        path = _object(moto, out["dest_path"], tmp_path)
        facts = streams(path)
        assert (facts["video"]["width"], facts["video"]["height"]) == (asked_w, asked_h), facts
        assert "audio" not in facts, facts  # Octet leaves audio out
        measured = path.stat().st_size * 8 / 1000 / facts["duration"]
        assert abs(measured - kbps) / kbps <= 0.10, (out["dest_path"], measured, kbps)
        print(f"{out['dest_path']}: {facts['video']['width']}x{facts['video']['height']}, "
              f"{measured:.0f} kbps for {kbps} asked ({(measured - kbps) / kbps:+.1%})")
    assert facts["video"]["profile"] == "Constrained Baseline" or facts["video"]["profile"] == "Baseline"
    # the webhook: JSON, after the job completed
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(c.path == "/hook?d=octet" for c in receiver.calls):
        time.sleep(0.2)
    hooks = [c for c in receiver.calls if c.path == "/hook?d=octet"]
    assert len(hooks) == 1, hooks
    assert hooks[0].headers["Content-Type"] == "application/json"
    assert json.loads(hooks[0].body) == {"api_version": "v0", "job_id": job_id, "status": "complete"}


def test_audio_only_when_opted_in(octet_server, moto, origin, tmp_path):
    outputs = [{"codec": "h264", "resolution": "320x-1", "dest_path": "with-audio/a.mp4", "qp": 30}]
    with httpx.Client(base_url=octet_server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        r = c.post("/v0/jobs/create", json=_job(origin, moto, outputs, include_audio=True))
        done = _wait(c, r.json()["job_id"])
    assert done["status"] == "complete", done
    facts = streams(_object(moto, "with-audio/a.mp4", tmp_path))
    assert facts["video"]["width"] == 320 and facts["video"]["height"] == 180
    assert facts["audio"]["codec"] == "aac"


def test_constqp_puts_every_macroblock_at_the_asked_qp(octet_server, moto, origin, tmp_path):
    """rc constqp is x264's constant-quantizer mode: the decoder reports QP 30 for every macroblock of every
    I, P and B frame. The same job's rc vbr cq 30 output (CRF) spreads its QPs: the check tells them apart."""
    outputs = [{"codec": "h264", "resolution": "320x180", "dest_path": "qp/constqp.mp4", "rc": "constqp", "qp": 30},
               {"codec": "h264", "resolution": "320x180", "dest_path": "qp/cq.mp4", "rc": "vbr", "cq": 30}]
    with httpx.Client(base_url=octet_server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        r = c.post("/v0/jobs/create", json=_job(origin, moto, outputs))
        done = _wait(c, r.json()["job_id"])
    assert done["status"] == "complete", done
    path = _object(moto, "qp/constqp.mp4", tmp_path)
    # no NVIDIA GPU on this box: the trial encode failed (the server said so when it started), so x264 made
    # it (its SEI names it and its mode)
    assert "h264_nvenc: not used (Cannot load libcuda.so.1): Octet jobs encode with libx264" in \
        octet_server.log.read_text()
    assert b"x264 - core" in path.read_bytes() and b" rc=cqp " in path.read_bytes()
    frames = macroblock_qps(path)
    assert {kind for kind, _ in frames} == {"I", "P", "B"}
    assert all(set(qps) == {30} for _, qps in frames), [q for q in frames if set(q[1]) != {30}][:3]
    spread = {qp for _, qps in macroblock_qps(_object(moto, "qp/cq.mp4", tmp_path)) for qp in qps}
    assert len(spread) > 5, spread
    print(f"constqp 30: {len(frames)} frames, {sum(sum(q.values()) for _, q in frames)} macroblocks, all at QP 30; "
          f"cq 30: QPs {min(spread)}-{max(spread)}")


def test_cbr_keeps_every_second_within_its_vbv_buffer(octet_server, moto, origin, tmp_path):
    """rc cbr: -b:v = -maxrate = bitrate with a one-second VBV buffer, so no second of video carries more than
    the buffer plus one second at the rate (2 x 400 kbps), and the whole file is within 10% of the rate."""
    outputs = [{"codec": "h264", "resolution": "640x360", "dest_path": "cbr/400.mp4", "rc": "cbr",
                "bitrate_kbps": 400}]
    with httpx.Client(base_url=octet_server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        r = c.post("/v0/jobs/create", json=_job(origin, moto, outputs))
        done = _wait(c, r.json()["job_id"])
    assert done["status"] == "complete", done
    path = _object(moto, "cbr/400.mp4", tmp_path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(float(p.pts * stream.time_base), p.size) for p in container.demux(stream) if p.size]
    end = max(t for t, _ in packets)
    windows = [sum(size for t, size in packets if start <= t < start + 1) * 8 / 1000
               for start in [i / 10 for i in range(int((end - 1) * 10) + 1)]]
    assert max(windows) <= 2 * 400, max(windows)
    measured = path.stat().st_size * 8 / 1000 / streams(path)["duration"]
    assert abs(measured - 400) / 400 <= 0.10, measured
    print(f"cbr 400: {measured:.0f} kbps overall, busiest second {max(windows):.0f} kbit")


def test_nvenc_failing_at_encode_time_falls_back_to_x264(moto, origin, tmp_path, monkeypatch, caplog):
    """If the trial encode said yes but h264_nvenc then fails (this box has no NVIDIA GPU: the trial is made
    to lie here), the job is encoded by x264, says so in the task's warnings and the log, and the process
    stops trying NVENC."""
    import logging

    from tests.api.conftest import LiveApp
    from vidmill.config import Settings
    from vidmill.engine import ffmpeg
    from vidmill.runtime import Runtime

    monkeypatch.setattr(ffmpeg, "nvenc_status", lambda: (True, "ok"))
    monkeypatch.setattr(ffmpeg, "_hw_failed", {})
    monkeypatch.setattr(ffmpeg, "_hw_logged", False)
    caplog.set_level(logging.INFO, logger="vidmill")
    rt = Runtime(Settings(data_dir=tmp_path, api_key=KEY, allow_private_networks=True, octet_s3_endpoint=moto.endpoint,
                          storage_plain_http_hosts=moto.endpoint.split("://", 1)[1]))
    outputs = [{"codec": "h264", "resolution": "320x180", "dest_path": "fallback/a.mp4", "rc": "constqp", "qp": 28}]
    with LiveApp(rt) as app, httpx.Client(base_url=app.url, headers={"Authorization": f"Bearer {KEY}"},
                                          timeout=30) as c:
        first = c.post("/v0/jobs/create", json=_job(origin, moto, outputs)).json()["job_id"]
        done = _wait(c, first)
        assert done["status"] == "complete", done
        second = c.post("/v0/jobs/create", json=_job(origin, moto, outputs)).json()["job_id"]
        assert _wait(c, second)["status"] == "complete"
    rt.stop()
    assert "h264_nvenc passed the trial encode" in caplog.text
    (warning,) = [w for w in rt.tasks.get(first).warnings if "h264_nvenc" in w["message"]]
    assert warning["message"].startswith("h264_nvenc failed at encode time (") and "encoded in software" in warning["message"]
    assert "h264_nvenc failed at encode time" in caplog.text
    assert not [w for w in rt.tasks.get(second).warnings if "h264_nvenc" in w["message"]]  # not tried again
    frames = macroblock_qps(_object(moto, "fallback/a.mp4", tmp_path))
    assert all(set(qps) == {28} for _, qps in frames)
    print("fallback warning:", warning["message"])
