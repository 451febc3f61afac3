"""`make bench`: vidmill against the same FFmpeg command run by hand, side by side in one run.

Two sections: one MP4 rendition (service vs its own argv by hand), and a 4-rung HLS ladder (1080/720/480/360
from a 20 s 1080p source the bench makes from ../shared/media) through the service against four separate FFmpeg
runs by hand and against the best single hand-written command, with wall and CPU seconds.

Measures one MP4 rendition: start_encode2 → status ``completed`` through a real vidmill server
(download from a local origin, probe, encode, probe the output, publish) against the very argv
the planner produced, run by hand on the same source. Pairs alternate (hand, service, hand, ...)
so machine noise hits both alike; the report quotes medians and the median of per-pair ratios.
Writes BENCHMARKS.md at the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import CallbackReceiver, StaticServer, VidmillServer  # noqa: E402
from vidmill.core.query import parse_query  # noqa: E402
from vidmill.engine import ffmpeg as ffmpeg_bin  # noqa: E402
from vidmill.engine import probe as probing  # noqa: E402
from vidmill.engine.plan import decide_upscale, plan_output  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
SOURCE = "bbb_trailer_720p_55s_mp3.mp4"
FORMAT = {"output": "mp4", "size": "1280x720", "video_codec": "libx264"}
LADDER_SOURCE = "ladder_1080p_20s.mp4"  # made from SOURCE by make_ladder_source (never committed)
LADDER = {"output": "advanced_hls", "segment_duration": 4, "video_codec": "libx264",
          "stream": [{"resolution": r} for r in (1080, 720, 480, 360)]}


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds of a process and its reaped children (FFmpeg runs as the server's child)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def make_ladder_source(folder: Path) -> Path:
    """A 20 s 1080p24 H.264/AAC source cut from the trailer and upscaled (the media holds no 1080p footage)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / LADDER_SOURCE
    if not out.exists():
        subprocess.run([ffmpeg_bin.ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", "10", "-t", "20", "-i",
                        str(MEDIA / SOURCE), "-vf", "scale=1920:1080", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "18", "-c:a", "aac", "-b:a", "128k", str(out)], check=True)
    return out


def ladder_plan(work: Path, source: Path):
    from vidmill.pipeline import plan_job

    query = parse_query(json.dumps({"query": {"source": "https://bench.invalid/s.mp4", "format": [LADDER]}}))
    pj = probing.probe(source)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return plan_job(query, query.format[0], 0, src=source, info=probing.media_info(pj), probe_json=pj,
                    workdir=work)


def split_outputs(argv: list[str]) -> tuple[list[str], list[str], list[list[str]]]:
    """The planner's one-process ladder argv as (head before the graph, the graph, per-output option lists)."""
    i = argv.index("-filter_complex")
    head, graph, rest = argv[:i], argv[i + 1], argv[i + 2:]
    outputs, current = [], []
    for a in rest:
        current.append(a)
        if a.endswith(".m3u8"):
            outputs.append(current)
            current = []
    return head, graph, outputs


def separate_runs(argv: list[str], work: Path) -> list[list[str]]:
    """The same renditions as separate FFmpeg runs, one per rung, each decoding the source itself and scaling
    with its own -vf (the audio rendition rides with the first run), with FFmpeg's default threads as a hand
    run has them (the per-rung ``-threads`` is vidmill's, for encoders that run at once)."""
    head, graph, outputs = split_outputs(argv)
    chains = {}
    for part in graph.split(";"):
        label = part[part.rindex("[") + 1:-1]
        chains[label] = part[part.index("]") + 1:part.rindex("[")]
    runs = []
    for k, out in enumerate([o for o in outputs if o[1].startswith("[v")]):
        opts = list(out)
        label = opts[1][1:-1]
        opts[0:2] = ["-map", "0:v:0", "-vf", chains[label]]
        if "-threads" in opts:  # vidmill sizes threads for rungs encoding at once; a run by hand keeps FFmpeg's
            i = opts.index("-threads")
            del opts[i:i + 2]
        runs.append([*head, *opts])
    audio = [o for o in outputs if not o[1].startswith("[v")]
    runs[0] += [a for o in audio for a in o]
    return runs


def timed(argvs: list[list[str]], cwd: Path) -> tuple[float, float]:
    cpu0, t0 = cpu_children(), time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, check=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, cpu_children() - cpu0


def hand_run(work: Path, source: Path) -> tuple[float, list[str]]:
    query = parse_query(json.dumps({"query": {"source": "https://bench.invalid/s.mp4", "format": [FORMAT]}}))
    info = probing.media_info(probing.probe(source))
    decision = decide_upscale(query, info).get(0)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plan = plan_output(query.format[0], source=source, info=info, workdir=work, ffmpeg=ffmpeg_bin.ffmpeg_exe(),
                       index=0, upscale=False, decision=decision)
    t0 = time.perf_counter()
    for step in plan.steps:
        subprocess.run(step.argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, plan.steps[-1].argv


def service_run(api: httpx.Client, session: str, source_url: str, receiver: CallbackReceiver,
                fmt: dict | None = None, *, destination: dict | None = None) -> float:
    """start_encode2 posted → the ``saved`` callback (status ``completed``) arrives. Timing on the callback
    rather than on a tight status-poll loop keeps the measuring itself from stealing CPU from FFmpeg."""
    token = api.post("/v1/create_task", data={"token": session}).json()["task_token"]
    fmt = fmt or FORMAT
    fmt = {**fmt, "destination": destination} if destination else fmt
    query = json.dumps({"query": {"source": source_url, "format": [fmt], "callback_url": receiver.url}})
    t0 = time.perf_counter()
    r = api.post("/v1/start_encode2", data={"task_token": token, "query": query}).json()
    assert r["error"] == 0, r
    deadline = t0 + 600
    while time.perf_counter() < deadline:
        saved = [c for c in receiver.calls if c.form.get("task_token") == token and c.form.get("event") == "saved"]
        if saved:
            status = json.loads(saved[0].form["status"])
            if status["status"] != "completed":
                raise RuntimeError(status["error_description"])
            confirmed = api.post("/v1/status", data={"task_tokens": token}).json()["statuses"][token]
            assert confirmed["status"] == "completed", confirmed
            return saved[0].at - t0
        time.sleep(0.25)
    raise RuntimeError("no saved callback within 600 s")


def mp4_section(rows, argv, out) -> list[str]:
    med_hand = statistics.median(r[0] for r in rows)
    med_svc = statistics.median(r[1] for r in rows)
    med_ratio = statistics.median(r[2] for r in rows)
    shown_argv = show(argv, out)
    return [
        "## One MP4 rendition: service vs the same FFmpeg command by hand",
        "",
        f"Source `{SOURCE}` (H.264 1280x720 24 fps, 55 s, MP3) from a local HTTP origin; format `{json.dumps(FORMAT)}`.",
        "Service time: `start_encode2` posted → the `saved` callback (task `completed`) arrives at a local",
        "receiver: download over HTTP, probe, encode, output probe, publish, callback delivery. Hand time: the",
        "planner's argv run directly on the same file already on disk. Pairs alternate hand/service after one",
        "warm-up task. The callback is the clock so that the measuring adds no load of its own (a tight",
        "/v1/status poll loop runs in the same 2 cores as FFmpeg).",
        "",
        "| pair | by hand (s) | vidmill (s) | ratio |",
        "|---:|---:|---:|---:|",
        *[f"| {i + 1} | {h:.2f} | {s:.2f} | {r:.3f} |" for i, (h, s, r) in enumerate(rows)],
        f"| **median** | **{med_hand:.2f}** | **{med_svc:.2f}** | **{med_ratio:.3f}** |",
        "",
        f"Median of the per-pair ratios {med_ratio:.3f} (target ≤ 1.05, aim 1.03); ratio of the median times "
        f"{med_svc / med_hand:.3f}. Per-pair spread {min(r[2] for r in rows):.3f}–{max(r[2] for r in rows):.3f}: "
        "that is this machine's noise, the same FFmpeg argv runs on both sides.",
        "",
        "The command both sides ran:",
        "",
        "```",
        shown_argv,
        "```",
        "",
    ]


def show(argv, out) -> str:
    text = " ".join(a if a and " " not in a else repr(a) for a in argv)
    return text.replace(str(ROOT.parent), "…").replace(str(out), "…")


def ladder_section(rows, single_argv, runs, out) -> list[str]:
    """rows: (service wall, service cpu, separate wall, separate cpu, single wall, single cpu)."""
    med = [statistics.median(r[i] for r in rows) for i in range(6)]
    ratio_sep = statistics.median(r[0] / r[2] for r in rows)
    ratio_single = statistics.median(r[0] / r[4] for r in rows)
    cores = os.cpu_count() or 1
    floor = statistics.median(r[5] / cores / r[2] for r in rows)
    return [
        "## A 4-rung HLS ladder: service vs four separate runs vs one hand-written command",
        "",
        f"Source `{LADDER_SOURCE}`: 20 s of `{SOURCE}` upscaled to 1920x1080 24 fps (H.264 CRF 18, AAC), made",
        f"by the bench itself. Format `{json.dumps(LADDER)}`: 1080/720/480/360, x264 at vidmill's defaults,",
        "4 s segments, one shared AAC rendition. Three ways, in an order that rotates each round, after one",
        "warm-up task:",
        "",
        "- **vidmill**: the task through the server (download, probe, one FFmpeg process: decode once, split,",
        "  scale + encode each rung; segments measured for the master playlist, published), timed to the `saved`",
        "  callback; CPU is the server process and its reaped FFmpeg children.",
        "- **four separate runs**: the same renditions, one FFmpeg per rung run one after the other by hand, each",
        "  decoding the source and scaling with its own `-vf` (the audio rendition rides with the first).",
        "- **one hand-written command**: the best single command found (see docs/architecture.md: split-then-",
        "  scale measured against mapping the input N times), run by hand on the file already on disk.",
        "",
        "| round | vidmill wall / CPU (s) | 4 separate wall / CPU (s) | 1 command wall / CPU (s) |"
        " vidmill ÷ separate | vidmill ÷ 1 command |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {i + 1} | {r[0]:.2f} / {r[1]:.2f} | {r[2]:.2f} / {r[3]:.2f} | {r[4]:.2f} / {r[5]:.2f} | "
          f"{r[0] / r[2]:.3f} | {r[0] / r[4]:.3f} |" for i, r in enumerate(rows)],
        f"| **median** | **{med[0]:.2f} / {med[1]:.2f}** | **{med[2]:.2f} / {med[3]:.2f}** | "
        f"**{med[4]:.2f} / {med[5]:.2f}** | **{ratio_sep:.3f}** | **{ratio_single:.3f}** |",
        "",
        f"Median wall ratio vidmill ÷ four separate runs **{ratio_sep:.3f}** (target ≤ 0.80); vidmill ÷ the one",
        f"hand-written command **{ratio_single:.3f}** (target ≤ 1.05). CPU: vidmill {med[1]:.1f} s, separate runs "
        f"{med[3]:.1f} s ({med[1] / med[3]:.3f}x), one command {med[5]:.1f} s.",
        "",
        f"The bound on this box: a one-process ladder cannot finish sooner than its CPU seconds ÷ {cores} cores. The",
        f"one command's CPU ÷ {cores} over the separate runs' wall, per round, has median **{floor:.3f}**: even a",
        "ladder with no start-up, no drain and both cores busy every moment would reach no lower ratio, since it",
        "still runs the same four x264 encodes (which are nearly all of the CPU) and saves only three decodes.",
        "",
        "The one hand-written command:",
        "",
        "```",
        show(single_argv, out),
        "```",
        "",
        "The first of the four separate runs:",
        "",
        "```",
        show(runs[0], out),
        "```",
        "",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=7, help="MP4 pairs (0: keep the MP4 section already written)")
    ap.add_argument("--ladder-rounds", type=int, default=5)
    ap.add_argument("--storage-pairs", type=int, default=5,
                    help="S3 vs local pairs (0: keep the storage sections already written)")
    ap.add_argument("--only-storage", action="store_true",
                    help="run only the storage bench and replace its sections in BENCHMARKS.md")
    args = ap.parse_args()
    if args.only_storage:
        return only_storage(args.storage_pairs)
    out = ROOT / "bench" / "out"
    for old in out.glob("*"):
        if old.name != "media":  # the made ladder source is kept between runs
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    ladder_media = make_ladder_source(out / "media")
    rows, ladder_rows = [], []
    argv = None
    with StaticServer(MEDIA) as origin, StaticServer(out / "media") as ladder_origin, \
            VidmillServer(out / "data", env={"VIDMILL_WORKERS": "1"}) as server, \
            CallbackReceiver() as receiver, httpx.Client(base_url=server.url, timeout=60) as api:
        session = api.post("/v1/access_token", data={"api_key": server.api_key}).json()["token"]
        if args.pairs:
            service_run(api, session, f"{origin.url}/{SOURCE}", receiver)  # warm-up: page cache, imports
        for i in range(args.pairs):
            hand, argv = hand_run(out / "hand", MEDIA / SOURCE)
            svc = service_run(api, session, f"{origin.url}/{SOURCE}", receiver)
            rows.append((hand, svc, svc / hand))
            print(f"pair {i + 1}: hand {hand:.2f}s  service {svc:.2f}s  ratio {svc / hand:.3f}", flush=True)
        ladder_url = f"{ladder_origin.url}/{LADDER_SOURCE}"
        service_run(api, session, f"{origin.url}/{SOURCE}", receiver, {**FORMAT, "duration": 2})  # warm-up
        single = ladder_plan(out / "single", ladder_media).steps[0].argv
        runs = separate_runs(ladder_plan(out / "separate", ladder_media).steps[0].argv, out / "separate")
        for i in range(args.ladder_rounds):
            def through_service():
                cpu0 = cpu_of(server.proc.pid)
                wall = service_run(api, session, ladder_url, receiver, LADDER)
                return wall, cpu_of(server.proc.pid) - cpu0

            def by_hand(name, argvs):
                ladder_plan(out / name, ladder_media)  # fresh folders
                return timed(argvs, out / name)

            ways = [through_service, lambda: by_hand("separate", runs), lambda: by_hand("single", [single])]
            shift = i % len(ways)  # the order rotates each round: no way always runs first (or after another)
            got = {k: ways[k]() for k in [*range(len(ways))][shift:] + [*range(len(ways))][:shift]}
            (svc, svc_cpu), (sep, sep_cpu), (one, one_cpu) = got[0], got[1], got[2]
            ladder_rows.append((svc, svc_cpu, sep, sep_cpu, one, one_cpu))
            print(f"ladder round {i + 1}: vidmill {svc:.2f}s/{svc_cpu:.1f}cpu  separate {sep:.2f}s/{sep_cpu:.1f}cpu  "
                  f"one command {one:.2f}s/{one_cpu:.1f}cpu", flush=True)
    previous = (ROOT / "BENCHMARKS.md").read_text() if (ROOT / "BENCHMARKS.md").exists() else ""
    if rows:
        mp4 = mp4_section(rows, argv, out)
    else:
        kept = previous.split("## One MP4 rendition", 1)[1].split("\n## ", 1)[0] if "## One MP4" in previous else ""
        mp4 = ["## One MP4 rendition" + kept.rstrip("\n"), ""] if kept else []
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, FFmpeg {ffmpeg_bin.ffmpeg_version()} (imageio-ffmpeg).",
        "These machines are noisy: compare the ratios, measured side by side in one run, not absolute times.",
        "",
        *mp4,
        *ladder_section(ladder_rows, single, runs, out),
    ]
    if args.storage_pairs:
        lines += storage_bench(out / "storage", args.storage_pairs)
    elif "\n## One rendition: S3 source" in previous:  # --storage-pairs 0 keeps the storage sections written
        lines += ["## One rendition: S3 source" + previous.split("\n## One rendition: S3 source", 1)[1].rstrip("\n"), ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("wrote BENCHMARKS.md")
    return 0


def _phases(db: Path, task_tokens: list[str]) -> dict[str, list[float]]:
    """Seconds each task spent downloading (claim → encoding) and saving (saving → completed), from events."""
    import sqlite3

    out: dict[str, list[float]] = {"downloading": [], "saving": []}
    with sqlite3.connect(db) as c:
        for token in task_tokens:
            rows = c.execute("SELECT e.status, e.at FROM events e JOIN tasks t ON t.id = e.task_id "
                             "WHERE t.token = ? AND e.job_id IS NOT NULL ORDER BY e.id", (token,)).fetchall()
            at = {status: time.mktime(time.strptime(ts[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + ts[19:])
                  for status, ts in rows}
            out["downloading"].append(at["encoding"] - at["downloading"])
            out["saving"].append(at["completed"] - at["saving"])
    return out


def storage_bench(out: Path, pairs: int, *, fmt: dict = FORMAT, upload_bytes: int = 1024**3) -> list[str]:
    """One rendition with an S3 source and an S3 destination (moto) against the same task on local files,
    alternating, through one vidmill server; then the upload throughput of a 1 GB sparse file to moto."""
    import resource

    from tests.storage_servers import MotoS3
    from vidmill import destinations
    from vidmill.config import Settings

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows, tokens = [], {"local": [], "s3": []}
    env = {"VIDMILL_WORKERS": "1", "VIDMILL_STORAGE_PLAIN_HTTP_HOSTS": "127.0.0.1"}
    moto = MotoS3(out)
    try:
        s3 = moto.client()
        s3.create_bucket(Bucket="bench")
        s3.upload_file(str(MEDIA / SOURCE), "bench", f"in/{SOURCE}")
        secret = moto.secret.replace("/", "%2F").replace("+", "%2B")
        s3_source = f"s3://{moto.key}:{secret}@127.0.0.1:{moto.port}/bench/in/{SOURCE}"
        s3_dest = {"url": f"s3://127.0.0.1:{moto.port}/bench/out/", "key": moto.key, "secret": moto.secret}
        with StaticServer(MEDIA) as origin, VidmillServer(out / "data", env=env) as server, \
                CallbackReceiver() as receiver, httpx.Client(base_url=server.url, timeout=60) as api:
            session = api.post("/v1/access_token", data={"api_key": server.api_key}).json()["token"]
            local_url = f"{origin.url}/{SOURCE}"
            service_run(api, session, s3_source, receiver, fmt, destination=s3_dest)  # warm-up
            moto_cpu = 0.0
            for i in range(pairs):
                c0 = cpu_of(server.proc.pid)
                local = service_run(api, session, local_url, receiver, fmt)
                c1, m1 = cpu_of(server.proc.pid), cpu_of(moto._p.proc.pid)
                remote = service_run(api, session, s3_source, receiver, fmt, destination=s3_dest)
                c2, m2 = cpu_of(server.proc.pid), cpu_of(moto._p.proc.pid)
                moto_cpu += m2 - m1
                rows.append((local, remote, remote / local, c1 - c0, c2 - c1))
                print(f"storage pair {i + 1}: local {local:.2f}s ({c1 - c0:.1f} CPU s)  s3 {remote:.2f}s "
                      f"({c2 - c1:.1f} CPU s)  ratio {remote / local:.3f}", flush=True)
            saved = [c.form["task_token"] for c in receiver.calls if c.form.get("event") == "saved"][1:]
            tokens = {"local": saved[0::2], "s3": saved[1::2]}
        phases = {side: _phases(out / "data" / "vidmill.db", tokens[side]) for side in ("local", "s3")}
        # upload throughput: 1 GiB sparse file, multipart in parallel parts, through the s3 destination
        big = out / "sparse-1g.bin"
        with open(big, "wb") as f:
            f.truncate(upload_bytes)
        # moto assembles the object in CompleteMultipartUpload slowly on a busy box: allow it time (S3 may too)
        settings = Settings(data_dir=out, allow_private_networks=True, storage_plain_http_hosts="127.0.0.1",
                            storage_timeout=900)
        s3.create_bucket(Bucket="throughput")
        before = resource.getrusage(resource.RUSAGE_SELF)
        m0 = cpu_of(moto._p.proc.pid)
        t0 = time.perf_counter()
        destinations.put([destinations.OutputFile("sparse-1g.bin", big)],
                         destinations.Target(url=f"s3://127.0.0.1:{moto.port}/throughput/sparse-1g.bin",
                                             key=moto.key, secret=moto.secret), settings=settings)
        upload_s = time.perf_counter() - t0
        upload_moto_cpu = cpu_of(moto._p.proc.pid) - m0
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert s3.head_object(Bucket="throughput", Key="sparse-1g.bin")["ContentLength"] == upload_bytes
        big.unlink()
    finally:
        moto.stop()
    med = statistics.median
    med_ratio = med(r[2] for r in rows)
    cpu_ratio = med(r[4] / r[3] for r in rows)
    print(f"storage median ratio {med_ratio:.3f} (CPU {cpu_ratio:.3f}); upload {upload_bytes / 1024**2 / upload_s:.1f} MiB/s", flush=True)
    ph = {side: {k: med(v) for k, v in p.items()} for side, p in phases.items()}
    return [
        STORAGE_BEGIN,
        "## One rendition: S3 source and S3 destination (moto) vs local files",
        "",
        f"The same task (`{SOURCE}`, format `{json.dumps(fmt)}`) through one vidmill server, alternating:",
        "source from a local HTTP origin and output in vidmill's own storage, against source `s3://` and",
        "destination `s3://` on moto's S3 server (signed requests, path style, 127.0.0.1). Clock: start_encode2",
        "→ the `saved` callback. CPU: the vidmill server process and its FFmpeg children (moto's not counted).",
        "",
        "| pair | local (s) | S3 → S3 (s) | ratio | local CPU s | S3 CPU s |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {i + 1} | {a:.2f} | {b:.2f} | {r:.3f} | {ca:.1f} | {cb:.1f} |" for i, (a, b, r, ca, cb) in enumerate(rows)],
        f"| **median** | **{med(r[0] for r in rows):.2f}** | **{med(r[1] for r in rows):.2f}** | **{med_ratio:.3f}** "
        f"| **{med(r[3] for r in rows):.1f}** | **{med(r[4] for r in rows):.1f}** |",
        "",
        f"Median of the per-pair wall-time ratios {med_ratio:.3f} (target ≤ 1.05); per-pair spread "
        f"{min(r[2] for r in rows):.3f}–{max(r[2] for r in rows):.3f}. Median per-pair CPU ratio {cpu_ratio:.3f}.",
        f"Where the difference lives (medians from the task's event log): downloading {ph['local']['downloading']:.2f} s "
        f"local vs {ph['s3']['downloading']:.2f} s S3; saving {ph['local']['saving']:.2f} s local vs "
        f"{ph['s3']['saving']:.2f} s S3. moto used {moto_cpu / max(1, len(rows)):.2f} CPU s per S3 task.",
        "",
        "## Upload throughput to S3 (moto)",
        "",
        f"A {upload_bytes / 1024**3:g} GiB sparse file through the `s3://` destination (multipart, 8 MiB parts, 4 in flight, moto on the",
        f"same 2 cores): {upload_s:.1f} s wall, **{upload_bytes / 1024**2 / upload_s:.1f} MiB/s**; {cpu:.1f} CPU s in the uploading",
        f"process and {upload_moto_cpu:.1f} CPU s in moto (which shares the box: a floor for a real S3).",
        STORAGE_END,
        "",
    ]


STORAGE_BEGIN, STORAGE_END = "<!-- storage bench -->", "<!-- /storage bench -->"


def only_storage(pairs: int) -> int:
    """Re-measure the storage sections alone, keeping the rest of BENCHMARKS.md as it is."""
    lines = storage_bench(ROOT / "bench" / "out" / "storage", pairs)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if STORAGE_BEGIN in text and STORAGE_END in text:
        head, _, rest = text.partition(STORAGE_BEGIN)
        tail = rest.partition(STORAGE_END)[2]
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    path.write_text(head + "\n".join(lines) + tail)
    print("wrote the storage sections of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
