"""Callbacks against a real receiver on loopback that goes away: order, retries across a restart, the horizon,
the delivery log in status, CLI and API, and redelivery on demand."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from qencode3.client import Client

from tests.integration.helpers import wait_task
from tests.servers import CallbackReceiver, VidmillServer, free_port

pytestmark = pytest.mark.integration

DOWN_FOR = 90.0  # seconds the receiver is away in the first test (issue 5)


def _cli(server: VidmillServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidmill.cli", *args], env=server.env, capture_output=True,
                          text=True, timeout=60)


def _callback_warnings(task) -> list[str]:
    return [w["details"] for w in task.status()["warnings"] if w["message"] == "Callback delivery error"]


def _start(client, source: str, hook: str):
    task = client.create_task()
    task.custom_start({"query": {"source": source, "callback_url": hook, "format": [{"output": "metadata"}]}})
    assert not task.error, task.message
    return task


def test_receiver_down_90s_with_a_server_restart_then_every_callback_arrives_in_order(tmp_path, origin):
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"  # nothing listens there for DOWN_FOR seconds
    env = {"VIDMILL_CALLBACK_RETRY_BASE": "1", "VIDMILL_CALLBACK_RETRY_MAX_DELAY": "4"}
    down_since = time.monotonic()
    first = VidmillServer(tmp_path / "data", env=env).start()
    try:
        client = Client(first.api_key, api_url=first.url + "/")
        ok = _start(client, f"{origin.url}/carphone_qcif_sar.mp4", hook)
        bad = _start(client, f"{origin.url}/notes.txt", hook)  # not media: queued, error, saved
        assert wait_task(ok)["status"] == "completed"
        assert wait_task(bad)["status"] == "error"
        time.sleep(5)  # a few failed attempts
        assert all("pending retry: attempt" in d for d in _callback_warnings(ok)), _callback_warnings(ok)
        first.kill9()  # with every callback still pending
    finally:
        first.stop()
    second = VidmillServer(tmp_path / "data", env=env, port=first.port).start()
    try:
        time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - down_since)))
        with CallbackReceiver(port=port) as receiver:
            up_at = time.monotonic()
            deadline = up_at + 30
            while time.monotonic() < deadline and len(receiver.calls) < 5:
                time.sleep(0.2)
            assert receiver.events(ok.task_token) == ["queued", "saved"]
            assert receiver.events(bad.task_token) == ["queued", "error", "saved"]
            arrived = {(c.form["task_token"], c.form["event"]): c for c in receiver.calls}
            # each body is the task as it was at its event, rendered at send time
            assert json.loads(arrived[ok.task_token, "queued"].form["status"])["status"] == "queued"
            assert json.loads(arrived[ok.task_token, "saved"].form["status"])["status"] == "completed"
            assert arrived[bad.task_token, "error"].form["error_message"]
            latency = max(c.at for c in receiver.calls) - up_at
        for task in (ok, bad):
            # the warnings tell the current truth: the events that failed at first were delivered after all
            # (a later event waiting behind an earlier one was never tried, so it has no warning of its own)
            warnings = _callback_warnings(task)
            assert warnings[0].startswith(f"queued callback to {hook}: delivered after "), warnings
            assert all(" delivered after " in w for w in warnings), warnings
        log = json.loads(_cli(second, "deliveries", "list", ok.task_token).stdout)
        assert [(d["event"], d["state"]) for d in log] == [("queued", "delivered"), ("saved", "delivered")]
        attempts = log[0]["log"]
        assert len(attempts) == log[0]["attempts"] >= 10  # tried all along the 90 s, across the restart
        assert all("ConnectError" in a["error"] for a in attempts[:-1])
        assert attempts[-1]["http_status"] == 200 and attempts[-1]["error"] is None
        print(f"\n90 s outage: {len(receiver.calls)} callbacks delivered in order {latency:.1f} s after the "
              f"receiver came back; the first took {len(attempts)} attempts")
        assert latency < 20
    finally:
        second.stop()


def test_past_the_horizon_given_up_visible_then_redelivered_on_demand(tmp_path, origin):
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    env = {"VIDMILL_CALLBACK_RETRY_HORIZON": "4", "VIDMILL_CALLBACK_RETRY_BASE": "0.5",
           "VIDMILL_CALLBACK_RETRY_MAX_DELAY": "1"}
    with VidmillServer(tmp_path / "data", env=env) as server:
        client = Client(server.api_key, api_url=server.url + "/")
        task = _start(client, f"{origin.url}/carphone_qcif_sar.mp4", hook)
        assert wait_task(task)["status"] == "completed"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            warnings = _callback_warnings(task)
            if len(warnings) == 2 and all("given up" in w for w in warnings):
                break
            time.sleep(0.3)
        assert [w.split(":")[0] for w in warnings] == ["queued callback to http", "saved callback to http"]
        assert all("given up after" in w and "ConnectError" in w for w in warnings), warnings

        listed = _cli(server, "deliveries", "list", task.task_token)
        assert listed.returncode == 0, listed.stderr
        log = json.loads(listed.stdout)
        assert [(d["event"], d["state"]) for d in log] == [("queued", "given_up"), ("saved", "given_up")]
        assert all(len(d["log"]) == d["attempts"] and d["given_up_at"] for d in log)
        # saved waited behind queued, so its own horizon had passed when its first try came
        assert log[0]["attempts"] >= 3 and log[1]["attempts"] >= 1

        api = httpx.Client(base_url=server.url, timeout=30)
        assert api.get(f"/vidmill/v1/tasks/{task.task_token}/deliveries").status_code == 401
        assert api.get(f"/vidmill/v1/tasks/{task.task_token}/deliveries",
                       headers={"Authorization": "Bearer wrongkey0000"}).status_code == 401
        auth = {"Authorization": f"Bearer {server.api_key}"}
        assert api.get(f"/vidmill/v1/tasks/{task.task_token}/deliveries", headers=auth).json() == log
        assert api.get(f"/vidmill/v1/tasks/{'0' * 32}/deliveries", headers=auth).status_code == 404

        with CallbackReceiver(port=port) as receiver:
            # the API asks the server's deliverer; the CLI delivers from its own process
            r = api.post(f"/vidmill/v1/tasks/{task.task_token}/deliveries/{log[0]['id']}/redeliver", headers=auth)
            assert r.status_code == 200 and r.json()["state"] in ("pending", "delivered"), r.text
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not receiver.calls:
                time.sleep(0.1)
            cli = _cli(server, "deliveries", "redeliver", task.task_token, str(log[1]["id"]))
            assert cli.returncode == 0, cli.stderr
            assert json.loads(cli.stdout)["state"] == "delivered"
            assert receiver.events(task.task_token) == ["queued", "saved"]
        warnings = _callback_warnings(task)
        assert [w.split(": ", 1)[1] for w in warnings] == [
            f"delivered after {log[0]['attempts'] + 1} attempts", f"delivered after {log[1]['attempts'] + 1} attempts"]
        missing = api.post(f"/vidmill/v1/tasks/{task.task_token}/deliveries/999999/redeliver", headers=auth)
        assert missing.status_code == 404
        api.close()
