"""``vidmill``: serve, doctor, transcode (the engine without a server), projects, profiles."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from vidmill import __version__
from vidmill.config import Settings


def _settings() -> Settings:
    return Settings()


def cmd_serve(args) -> int:
    import uvicorn

    from vidmill.app import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    app = create_app(settings)
    print(f"vidmill {__version__} serving the Qencode v1 API at {settings.public_url}/v1/ "
          f"(API docs {settings.public_url}/docs)", flush=True)
    print(f"data in {settings.data_dir}; database {settings.database_url.split('@')[-1]}", flush=True)
    if settings.api_key:
        print("API key: the one in VIDMILL_API_KEY", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level,
                timeout_graceful_shutdown=10)
    return 0


def cmd_worker(args) -> int:
    """Encode jobs and deliver callbacks from the shared database, with no API: the web app is never built,
    so every dialect's callbacks must render from the outbox alone."""
    import signal

    from vidmill.runtime import Runtime

    rt = Runtime(_settings())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    rt.start()
    print(f"vidmill {__version__} worker: {rt.settings.workers} encode worker(s) and the callback deliverer "
          f"on {rt.settings.database_url.split('@')[-1]}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        rt.stop()
    return 0


def doctor_report(settings: Settings) -> dict:
    from vidmill.engine import ffmpeg as ffmpeg_bin
    from vidmill.store.db import Database

    report: dict = {"version": __version__, "data_dir": str(settings.data_dir)}
    try:
        report["ffmpeg"] = ffmpeg_bin.ffmpeg_exe()
        report["ffmpeg_version"] = ffmpeg_bin.ffmpeg_version()
        wanted = ["libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1", "aac", "libopus", "libvorbis",
                  "libmp3lame", "png", "mjpeg"]
        have = set(ffmpeg_bin.encoders())
        report["encoders"] = {name: name in have for name in wanted}
        works, why = ffmpeg_bin.nvenc_status()  # detected by a trial encode, never assumed from the build
        report["h264_nvenc"] = {"built": "h264_nvenc" in have, "works": works, "detail": why}
    except Exception as exc:  # doctor reports what is broken instead of crashing
        report["ffmpeg"] = f"error: {exc}"
    try:
        import av

        report["probe"] = f"PyAV {av.__version__}"
    except Exception as exc:
        report["probe"] = f"error: {exc}"
    db_url = settings.database_url
    safe_url = db_url if "@" not in db_url else db_url.split("://", 1)[0] + "://…@" + db_url.split("@", 1)[1]
    try:
        db = Database(db_url)
        db.ping()
        db.dispose()
        report["database"] = {"url": safe_url, "ok": True}
    except Exception as exc:
        report["database"] = {"url": safe_url, "ok": False, "error": str(exc)}
    return report


def cmd_doctor(args) -> int:
    report = doctor_report(_settings())
    print(json.dumps(report, indent=2))
    ok = report["database"].get("ok") and not str(report.get("ffmpeg", "")).startswith("error")
    return 0 if ok else 1


def _progress_bar(label: str):
    width = 30

    def show(percent: float) -> None:
        filled = int(width * min(percent, 100) / 100)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'-' * (width - filled)}] {percent:5.1f}%")
        sys.stderr.flush()

    return show


def cmd_transcode(args) -> int:
    from vidmill.core.query import check_supported, parse_query
    from vidmill.engine import ffmpeg as ffmpeg_bin
    from vidmill.engine import probe as probing
    from vidmill.engine.plan import decide_upscale, plan_output
    from vidmill.errors import VidmillError
    from vidmill.runner import ffmpeg as runner
    from vidmill import sources

    raw = json.loads(Path(args.query).read_text())
    if "query" not in raw:
        raw = {"query": raw}
    raw["query"]["source"] = args.source if "://" in args.source else "https://local.invalid/source"
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        query = parse_query(json.dumps(raw))
        check_supported(query)
        with tempfile.TemporaryDirectory(prefix="vidmill-") as tmp:
            tmp_path = Path(tmp)
            if "://" in args.source:
                settings = _settings()
                src = tmp_path / "source"
                sources.fetch(args.source, src, settings=settings)
            else:
                src = Path(args.source).resolve()
                if not src.is_file():
                    print(f"vidmill: no such file: {args.source}", file=sys.stderr)
                    return 2
            probe_json = probing.probe(src)
            info = probing.media_info(probe_json)
            decisions = decide_upscale(query, info)
            for i, fmt in enumerate(query.format):
                jdir = tmp_path / f"job-{i}"
                jdir.mkdir()
                if fmt.output == "metadata":
                    target = out_dir / f"{i}-metadata.json"
                    target.write_text(json.dumps(probe_json, indent=2))
                    print(target)
                    continue
                plan = plan_output(fmt, source=src, info=info, workdir=jdir, ffmpeg=ffmpeg_bin.ffmpeg_exe(),
                                   index=i, upscale=bool(query.upscale), decision=decisions.get(i))
                for w in plan.warnings:
                    print(f"warning: {w.message}", file=sys.stderr)
                if plan.skipped:
                    print(f"format[{i}] skipped: {plan.skip_reason}", file=sys.stderr)
                    continue
                for n, step in enumerate(plan.steps):
                    bar = _progress_bar(f"format[{i}] {fmt.output} {n + 1}/{len(plan.steps)}")
                    runner.run(step.argv, duration_s=step.duration_s, on_progress=bar, cwd=jdir)
                    bar(100.0)
                    sys.stderr.write("\n")
                for path, data in (plan.write_files or {}).items():
                    Path(path).write_bytes(data)
                for produced in plan.outputs:
                    target = out_dir / f"{i}-{Path(produced).name}"
                    shutil.move(str(produced), target)
                    print(target)
    except VidmillError as exc:
        print(f"vidmill: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _runtime():
    from vidmill.runtime import Runtime

    return Runtime(_settings(), start_workers=False)


def cmd_projects(args) -> int:
    rt = _runtime()
    try:
        if args.action == "create":
            project, key = rt.projects.create(args.name)
            print(json.dumps({"project": project.name, "api_key": key, "callback_secret": project.callback_secret}))
        elif args.action == "add-key":
            print(json.dumps({"project": args.name, "api_key": rt.projects.add_key(args.name)}))
        else:
            print(json.dumps(rt.projects.list(), indent=2, ensure_ascii=False))
    finally:
        rt.db.dispose()
    return 0


def cmd_profiles(args) -> int:
    from vidmill.core.query import parse_query

    rt = _runtime()
    try:
        formats = json.loads(Path(args.file).read_text())
        if isinstance(formats, dict):
            formats = formats.get("format", [formats])
        parse_query(json.dumps({"query": {"source": "https://example.invalid/x.mp4", "format": formats}}))
        project = next((p for p in rt.projects.list() if p["name"] == args.project), None)
        if project is None:
            print(f"vidmill: no project named {args.project!r}", file=sys.stderr)
            return 2
        uid = rt.tasks.add_profile(rt.projects.get(project["id"]), args.name, formats)
        print(json.dumps({"profile": uid, "name": args.name}))
    finally:
        rt.db.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidmill", description="Self-hosted video transcoding on FFmpeg.")
    p.add_argument("--version", action="version", version=f"vidmill {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the API (embedded default: SQLite, local workers)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--log-level", default="warning")
    s.set_defaults(func=cmd_serve)
    w = sub.add_parser("worker", help="encode jobs and deliver callbacks from the database, without the API")
    w.set_defaults(func=cmd_worker)
    d = sub.add_parser("doctor", help="print what vidmill runs on, as JSON")
    d.set_defaults(func=cmd_doctor)
    t = sub.add_parser("transcode", help="run the engine on one source without a server")
    t.add_argument("source", help="a local file or an http(s) URL")
    t.add_argument("--query", required=True, help="JSON file: {\"query\": {...}} or the query object")
    t.add_argument("--out", default="vidmill-out", help="folder for the outputs")
    t.set_defaults(func=cmd_transcode)
    pr = sub.add_parser("projects", help="list or create projects and API keys")
    pr.add_argument("action", choices=["list", "create", "add-key"], nargs="?", default="list")
    pr.add_argument("name", nargs="?")
    pr.set_defaults(func=cmd_projects)
    pf = sub.add_parser("profiles", help="store a profile (format list) for start_encode")
    pf.add_argument("action", choices=["add"])
    pf.add_argument("--project", default="default")
    pf.add_argument("--name", required=True)
    pf.add_argument("--file", required=True, help="JSON: a format object or list of them")
    pf.set_defaults(func=cmd_profiles)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "projects" and args.action in ("create", "add-key") and not args.name:
        print("vidmill: projects create/add-key need a NAME", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
