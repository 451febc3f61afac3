"""A DASH ladder from a 2.39:1 picture (cropped from the real trailer): rungs whose even sides round apart
(574x240, 344x144) carry one display aspect ratio, and dash.js and Shaka play them to the end."""

from __future__ import annotations

import json
import subprocess

import imageio_ffmpeg
import pytest

from tests.players.servers import MediaServer
from vidmill.core.query import check_supported, parse_query
from vidmill.engine import probe as probing
from vidmill.pipeline import describe_outputs, plan_job, run_plan

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SOURCE = "bbb_720p_5s_aac51.mp4"


@pytest.fixture(scope="module")
def scope_ladder(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("scope")
    source = root / "scope.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(media / SOURCE), "-vf", "crop=1280:536",
                    "-c:v", "libx264", "-preset", "veryfast", "-c:a", "copy", str(source)], check=True)
    fmt = {"output": "advanced_dash", "segment_duration": 1, "video_codec_parameters": {"preset": "veryfast"},
           "stream": [{"resolution": 240}, {"resolution": 144}]}
    q = parse_query(json.dumps({"query": {"source": "https://h.invalid/s.mp4", "format": [fmt]}}))
    check_supported(q)
    pj = probing.probe(source)
    out = root / "dash"
    out.mkdir()
    plan = plan_job(q, q.format[0], 0, src=source, info=probing.media_info(pj), probe_json=pj, workdir=out)
    run_plan(plan, out)
    described = describe_outputs(plan, out)
    assert [(d.facts["width"], d.facts["height"], d.facts["dar"]) for d in described if d.kind == "video"] == [
        (574, 240, "160:67"), (344, 144, "160:67")]
    with MediaServer(root) as server:
        yield f"{server.url}/dash/{plan.main.name}"


@pytest.mark.parametrize("player", ["dash", "shaka"])
def test_a_239_to_1_dash_ladder_plays_every_rung(players, scope_ladder, player):
    v = players.play(player, scope_ladder, switch_every=2.0)
    assert v.ok, v.summary()
    assert 5.0 < v.duration < 5.6 and v.current_time >= v.duration - 0.1, v.summary()
    assert sorted({lv["height"] for lv in v.levels}) == [144, 240], v.levels
    assert sorted(v.heights) == [144, 240], f"every rung should have reached the screen: {v.summary()}"
    assert v.decoded_enough(fps=25), v.summary()
