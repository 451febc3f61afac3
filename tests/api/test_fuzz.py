"""Schemathesis fuzz of every route, from the app's own /openapi.json: no input gets an internal error.

In process (ASGI), on a real SQLite store, workers off (nothing is encoded). The v1 form methods get bodies
generated from their described fields, valid and invalid (negative mode); /files/{path}, /healthz and the
deliveries routes get generated paths, headers and queries. Name lookups are answered locally (a literal IP
only), so no generated host name ever leaves this machine.
"""

from __future__ import annotations

import socket
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from vidmill.app import create_app
from vidmill.config import Settings
from vidmill.runtime import Runtime

CASES_PER_OPERATION_AND_MODE = 150  # 9 operations x 2 modes (less where nothing can be invalid) > 2,000
# the bearer dialects' routes read their bodies raw (only paths and headers are described): fewer cases each,
# and tests/api/test_dialects_hostile.py feeds them hostile bodies
DIALECT_CASES = 30
DIALECT_PATHS = ("/v0/", "/v1/media/", "/v1/oauth2/")
TIME_LIMIT_S = 480  # about 75 s alone on this box; the bound stops a run-away, it is no benchmark


@pytest.fixture
def app(tmp_path, monkeypatch, loopback_only):
    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):  # literal IPs resolve as ever; names never reach a resolver
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in str(host) else socket.AF_INET, str(host))
        except (OSError, TypeError, ValueError):
            raise socket.gaierror(socket.EAI_NONAME, "no resolver in the fuzz test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    settings_ = Settings(data_dir=tmp_path, api_key="fuzzkey-0123456789")
    runtime = Runtime(settings_, start_workers=False)
    runtime.start()
    (tmp_path / "files" / "abc").mkdir(parents=True)
    (tmp_path / "files" / "abc" / "out.mp4").write_bytes(b"\0" * 100)
    yield create_app(settings_, runtime=runtime)
    runtime.stop()


def test_fuzz_every_route_finds_no_internal_error(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(op.label for op in operations)
    assert labels == sorted([
        "GET /files/{path}", "GET /healthz", "POST /v1/access_token", "POST /v1/create_task",
        "POST /v1/start_encode", "POST /v1/start_encode2", "POST /v1/status",
        "GET /vidmill/v1/tasks/{task_token}/deliveries",
        "POST /vidmill/v1/tasks/{task_token}/deliveries/{delivery_id}/redeliver",
        # Octet v0 and TransparentEdge (bearer keys; their bodies are read raw, so paths and headers are fuzzed)
        "POST /v0/jobs/create", "GET /v0/jobs/{job_id}", "POST /v1/oauth2/access_token",
        "GET /v1/media/{company_id}/transcode", "POST /v1/media/{company_id}/transcode",
        "GET /v1/media/{company_id}/transcode/{order_id}", "POST /v1/media/{company_id}/transcode/{order_id}/requeue",
        "POST /v1/media/{company_id}/transcode/{order_id}/relaunch", "GET /v1/media/{company_id}/profiles",
        "POST /v1/media/{company_id}/profiles", "GET /v1/media/{company_id}/profiles/{profile_id}",
        "PUT /v1/media/{company_id}/profiles/{profile_id}", "PATCH /v1/media/{company_id}/profiles/{profile_id}",
        "DELETE /v1/media/{company_id}/profiles/{profile_id}",
    ])
    started = time.monotonic()
    counts: dict[str, int] = {}
    failures: list[str] = []
    skipped: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            cases = DIALECT_CASES if any(p in op.label for p in DIALECT_PATHS) else CASES_PER_OPERATION_AND_MODE

            @settings(max_examples=cases, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def check(case):
                counts[op.label] = counts.get(op.label, 0) + 1
                response = case.call()
                body = response.content or b""
                if response.status_code >= 500 or b"internal server error" in body:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {body[:200]!r}")

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (e.g. /healthz has no parameters at all)
                assert mode is GenerationMode.NEGATIVE, op.label
                skipped.append(op.label)
            assert time.monotonic() - started < TIME_LIMIT_S, f"fuzz ran over {TIME_LIMIT_S} s: {counts}"
    total = sum(counts.values())
    print(f"\nfuzz: {total} cases over {len(counts)} operations in {time.monotonic() - started:.1f} s, "
          f"{len(failures)} internal errors; per operation: {counts}; no negative cases for {skipped}")
    assert failures == []
    assert total >= 2000, counts
