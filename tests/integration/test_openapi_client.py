"""A client generated from /openapi.json at test time (openapi-python-client) drives a real server through
access_token → create_task → start_encode2 → status: the description is what the server does."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

FORM_METHODS = ("access_token", "create_task", "start_encode2", "start_encode", "status")


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server.url}/openapi.json", timeout=10).json()


def test_every_form_method_describes_its_fields_and_answer(spec):
    for name in FORM_METHODS:
        op = spec["paths"][f"/v1/{name}"]["post"]
        content = op["requestBody"]["content"]
        assert set(content) == {"application/x-www-form-urlencoded"}  # multipart too, said in the description
        form = content["application/x-www-form-urlencoded"]["schema"]
        assert form["required"] and all(form["properties"][f].get("description") for f in form["properties"])
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "error" in spec["components"]["schemas"][answer]["required"]
    fields = spec["paths"]["/v1/start_encode2"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(fields["properties"]) == {"task_token", "query", "payload"}
    assert fields["required"] == ["task_token", "query"]


def test_docs_page_loads_the_description(server):
    page = httpx.get(f"{server.url}/docs", timeout=10)
    assert page.status_code == 200 and "/openapi.json" in page.text


def test_a_generated_client_runs_a_task(server, origin, spec, tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "cfg.yaml").write_text("post_hooks: []\npackage_name_override: vidmill_generated\n"
                                       "project_name_override: vidmill_generated\n")
    gen = subprocess.run([Path(sys.executable).with_name("openapi-python-client"), "generate", "--path", "spec.json",
                          "--config", "cfg.yaml", "--meta", "none", "--output-path", "vidmill_generated"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        pkg = importlib.import_module("vidmill_generated")
        api = importlib.import_module("vidmill_generated.api.qencode_v_1")
        models = importlib.import_module("vidmill_generated.models")
        for name in ("access_token", "create_task", "start_encode2", "status"):
            importlib.import_module(f"vidmill_generated.api.qencode_v_1.{name}")
        client = pkg.Client(base_url=server.url, timeout=30)

        answer = api.access_token.sync(client=client, body=models.AccessTokenBody(api_key=server.api_key))
        assert answer.error == 0 and len(answer.token) == 32
        refused = api.access_token.sync(client=client, body=models.AccessTokenBody(api_key="no"))
        assert (refused.error, refused.message) == (2, "API key did not pass validation")

        task = api.create_task.sync(client=client, body=models.CreateTaskBody(token=answer.token))
        assert task.error == 0 and task.upload_url.startswith(server.url)

        query = {"query": {"source": f"{origin.url}/carphone_qcif_sar.mp4",
                           "format": [{"output": "mp4", "size": "160x120"}]}}
        started = api.start_encode2.sync(client=client, body=models.StartEncode2Body(
            task_token=task.task_token, query=json.dumps(query), payload="from a generated client"))
        assert started.error == 0, started.message
        assert started.status_url == f"{server.url}/v1/status"

        deadline = time.monotonic() + 120
        while True:
            status = api.status.sync(client=client, body=models.StatusBody(task_tokens=task.task_token))
            assert status.error == 0
            item = status.statuses[task.task_token]
            if item.status in ("completed", "error") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert item.status == "completed", item.error_description
        assert item.payload == "from a generated client"
        (video,) = item.videos
        assert video.output_format == "mp4" and video.url.startswith(f"{server.url}/files/")
        assert video.meta["width"] == 160
    finally:
        sys.path.remove(str(tmp_path))
        for mod in [m for m in sys.modules if m.startswith("vidmill_generated")]:
            del sys.modules[mod]
