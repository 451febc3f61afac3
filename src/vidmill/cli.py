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
from vidmill.errors import NotFound


def _settings() -> Settings:
    return Settings()


def cmd_serve(args) -> int:
    import uvicorn

    from vidmill.app import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    _check_listen(settings.host, settings.port)
    app = create_app(settings)
    print(f"vidmill {__version__} serving the Qencode v1 API at {settings.public_url}/v1/ "
          f"(API docs {settings.public_url}/docs)", flush=True)
    print(f"data in {settings.data_dir}; database {settings.database_url.split('@')[-1]}", flush=True)
    if settings.api_key:
        print("API key: the one in VIDMILL_API_KEY", flush=True)
    print(_nvenc_line(settings), flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level,
                timeout_graceful_shutdown=10)
    return 0


def _check_listen(host: str, port: int) -> None:
    """Say plainly that the address is taken (uvicorn would log a traceback and exit 3)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


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
    print(_nvenc_line(rt.settings), flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        rt.stop()
    return 0


def _nvenc_line(settings: Settings) -> str:
    """What this process does about h264_nvenc (the trial encode runs here once and is cached)."""
    from vidmill.engine import ffmpeg as ffmpeg_bin

    if settings.nvenc == "off":
        return "h264_nvenc: off (VIDMILL_NVENC=off): Octet jobs encode with libx264"
    try:
        works, why = ffmpeg_bin.nvenc_status()
    except Exception as exc:  # a broken FFmpeg is doctor's to report; serving goes on
        works, why = False, f"{type(exc).__name__}: {exc}"
    if works:
        return "h264_nvenc: the trial encode passed: Octet jobs encode with it"
    return f"h264_nvenc: not used ({why}): Octet jobs encode with libx264"


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
        report["h264_nvenc"] = {"built": "h264_nvenc" in have, "works": works, "detail": why,
                                "used": works and settings.nvenc != "off", "setting": settings.nvenc}
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
    """The server's own pipeline (store, jobs, plan, FFmpeg, publish) on a throw-away SQLite data dir."""
    from vidmill.core.query import check_supported, parse_query
    from vidmill.errors import VidmillError

    raw = json.loads(Path(args.query).read_text())
    if "query" not in raw:
        raw = {"query": raw}
    local = "://" not in args.source
    raw["query"]["source"] = "https://local.invalid/source" if local else args.source
    out_dir = Path(args.out).resolve()
    try:
        query = parse_query(json.dumps(raw))
        check_supported(query)
    except VidmillError as exc:
        print(f"vidmill: {exc.message}", file=sys.stderr)
        return 1
    if local and not Path(args.source).is_file():
        print(f"vidmill: no such file: {args.source}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vidmill-") as tmp:
        return _transcode_in(Path(tmp), query, Path(args.source).resolve() if local else None, out_dir)


def _transcode_in(tmp: Path, query, local_source: Path | None, out_dir: Path) -> int:
    from vidmill.pipeline import JobContext, run_job, task_dir
    from vidmill.runtime import Runtime

    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'cli.db'}")
    rt = Runtime(settings, start_workers=False)
    try:
        project, _ = rt.projects.create("cli")
        token = rt.tasks.create(project)
        rt.tasks.start(token, query)
        if local_source is not None:  # the source is already here: hand it to the pipeline as downloaded
            tdir = task_dir(settings, token)
            tdir.mkdir(parents=True, exist_ok=True)
            (tdir / "source").symlink_to(local_source)
            (tdir / "source.ok").write_text(str(local_source.stat().st_size))
        ctx = JobContext(settings, rt.jobs)
        while (claimed := rt.jobs.claim("cli")) is not None:
            bar = _progress_bar(f"format[{claimed.index}] {claimed.kind}")
            worker = threading.Thread(target=run_job, args=(ctx, claimed), daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.5)
                job = next(j for j in rt.tasks.get(token).jobs if j.index == claimed.index)
                if job.status in ("encoding", "saving"):
                    bar(job.percent)
            job = next(j for j in rt.tasks.get(token).jobs if j.index == claimed.index)
            if job.status == "completed":
                bar(100.0)
            sys.stderr.write("\n")
        view = rt.tasks.get(token)
        for w in view.warnings:
            where = f" ({w['field']})" if w.get("field") else ""
            print(f"warning: format[{w.get('format', 0)}]: {w.get('message')}{where}", file=sys.stderr)
        failed = False
        for job in view.jobs:
            if job.status == "skipped":
                continue
            if job.status != "completed":
                failed = True
                print(f"vidmill: format[{job.index}] failed: {job.error_description}", file=sys.stderr)
                continue
            print(_collect(settings.files_dir, job, out_dir))
        return 1 if failed else 0
    finally:
        rt.db.dispose()


def _collect(files_dir: Path, job, out_dir: Path) -> Path | str:
    """Move a job's published files to ``out_dir`` (one file: ``<index>-<name>``; a streaming output: a folder
    ``<index>-<kind>/`` keeping its tree) and return the path of its main file."""
    result = job.result or {}
    if result.get("landed"):  # stored at the user's destination: say where
        return result["landed"][0]["url"]
    rels = [f["path"] for f in result.get("files", [])]
    main = result.get("main") or rels[0]
    if len(rels) == 1:
        target = out_dir / f"{job.index}-{Path(rels[0]).name}"
        shutil.move(str(files_dir / rels[0]), target)
        return target
    folder = out_dir / f"{job.index}-{job.kind}"
    shutil.rmtree(folder, ignore_errors=True)
    for rel in rels:
        _, inner = rel.split("/", 1)
        (folder / inner).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(files_dir / rel), folder / inner)
    return folder / main.split("/", 1)[1]


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
        elif args.action == "limits":  # direct (TUS) upload limits; an omitted one falls back to the server's
            try:
                project = rt.uploads.set_limits(args.name, max_bytes=args.upload_max_bytes,
                                                quota_bytes=args.upload_quota_bytes)
            except NotFound as exc:
                print(f"vidmill: {exc.message}", file=sys.stderr)
                return 2
            max_bytes, quota = rt.uploads.limits(project.id)
            print(json.dumps({"project": project.name, "upload_max_bytes": max_bytes, "upload_quota_bytes": quota}))
        else:
            print(json.dumps(rt.projects.list(), indent=2, ensure_ascii=False))
    finally:
        rt.db.dispose()
    return 0


def _read_json(path: str):
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{path} is not JSON: {exc}") from exc


def cmd_profiles(args) -> int:
    from vidmill.core.query import parse_query

    formats = _read_json(args.file)
    rt = _runtime()
    try:
        if isinstance(formats, dict):
            formats = formats.get("format", [formats])
        if not isinstance(formats, list):
            raise CliError(f"{args.file}: expected a format object or a list of them")
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


def cmd_deliveries(args) -> int:
    """A task's callback deliveries (each with its attempts), or send one again now from this process."""
    rt = _runtime()
    try:
        horizon = rt.settings.callback_retry_horizon
        if args.action == "list":
            print(json.dumps(rt.tasks.deliveries(args.token, retry_horizon=horizon), indent=2))
            return 0
        if args.id is None:
            raise CliError("deliveries redeliver needs the TOKEN and the delivery ID")
        task_id = rt.tasks.redeliver(args.token, args.id)
        rt.deliverer.run_once(task_id=task_id)  # in order: earlier pending events of the task go first
        row = next(d for d in rt.tasks.deliveries(args.token, retry_horizon=horizon) if d["id"] == args.id)
        print(json.dumps(row, indent=2))
        return 0 if row["state"] == "delivered" else 1
    finally:
        rt.db.dispose()


class CliError(Exception):
    """Bad input to a command: printed as one line, exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        self.exit(2, f"vidmill: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vidmill", description="Self-hosted video transcoding on FFmpeg.")
    p.add_argument("--version", action="version", version=f"vidmill {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    pr.add_argument("action", choices=["list", "create", "add-key", "limits"], nargs="?", default="list")
    pr.add_argument("name", nargs="?")
    pr.add_argument("--upload-max-bytes", type=int, help="limits: largest direct upload of the project")
    pr.add_argument("--upload-quota-bytes", type=int, help="limits: all live direct uploads of the project")
    pr.set_defaults(func=cmd_projects)
    pf = sub.add_parser("profiles", help="store a profile (format list) for start_encode")
    pf.add_argument("action", choices=["add"])
    pf.add_argument("--project", default="default")
    pf.add_argument("--name", required=True)
    pf.add_argument("--file", required=True, help="JSON: a format object or list of them")
    pf.set_defaults(func=cmd_profiles)
    dl = sub.add_parser("deliveries", help="list a task's callback deliveries, or redeliver one")
    dl.add_argument("action", choices=["list", "redeliver"])
    dl.add_argument("token", help="the task token")
    dl.add_argument("id", type=int, nargs="?", help="the delivery id (redeliver)")
    dl.set_defaults(func=cmd_deliveries)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "projects" and args.action in ("create", "add-key", "limits") and not args.name:
        print("vidmill: projects create/add-key/limits need a NAME", file=sys.stderr)
        return 2
    return run(args)


def run(args) -> int:
    """Run a command; whatever goes wrong is one line on stderr and a non-zero exit, never a traceback."""
    from pydantic import ValidationError

    from vidmill.errors import VidmillError

    try:
        return args.func(args)
    except (CliError, VidmillError) as exc:
        message = exc.message if isinstance(exc, VidmillError) else str(exc)
    except ValidationError as exc:  # the VIDMILL_* environment
        message = "bad setting: " + "; ".join(
            f"VIDMILL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # e.g. the database is unreachable: say so in one line, details in the log
        logging.getLogger("vidmill").debug("command failed", exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    print(f"vidmill: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
