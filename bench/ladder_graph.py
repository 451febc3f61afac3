"""Split-then-scale against mapping the input N times: which one-process ladder shape is faster on this box.

Both shapes decode the source once (FFmpeg runs one decoder per input stream and feeds every filter graph that
reads it). ``split``: the shared filters (deinterlace here) run once, then ``split=N`` and a scale per rung.
``maps``: each output has its own ``-vf`` with the whole chain, so the shared filters run N times. Rounds
alternate the two; prints medians of wall and CPU seconds. The figures go into docs/architecture.md.

    .venv/bin/python bench/ladder_graph.py [--rounds 3] [--deinterlace]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from run import make_ladder_source, timed  # noqa: E402
from vidmill.engine import ffmpeg as ffmpeg_bin  # noqa: E402

RUNGS = ((1920, 1080), (1280, 720), (854, 480), (640, 360))
ENCODE = ["-c:v", "libx264", "-preset", "faster", "-crf", "23", "-g", "96", "-keyint_min", "96",
          "-sc_threshold", "0", "-an", "-f", "mp4"]


def shapes(source: Path, work: Path, deinterlace: bool) -> dict[str, list[str]]:
    shared = ["bwdif=mode=send_frame"] if deinterlace else []
    head = [ffmpeg_bin.ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source)]
    graph = ";".join([f"[0:v:0]{','.join([*shared, f'split={len(RUNGS)}'])}"
                      + "".join(f"[s{i}]" for i in range(len(RUNGS)))]
                     + [f"[s{i}]scale={w}:{h}[v{i}]" for i, (w, h) in enumerate(RUNGS)])
    split = [*head, "-filter_complex", graph]
    for i, _ in enumerate(RUNGS):
        split += ["-map", f"[v{i}]", *ENCODE, str(work / f"split-{i}.mp4")]
    maps = list(head)
    for i, (w, h) in enumerate(RUNGS):
        maps += ["-map", "0:v:0", "-vf", ",".join([*shared, f"scale={w}:{h}"]), *ENCODE, str(work / f"maps-{i}.mp4")]
    return {"split": split, "maps": maps}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--deinterlace", action="store_true")
    args = ap.parse_args()
    work = ROOT / "bench" / "out" / "graph"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = make_ladder_source(ROOT / "bench" / "out" / "media")
    runs = shapes(source, work, args.deinterlace)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for i in range(args.rounds):
        for name, argv in (runs.items() if i % 2 == 0 else reversed(list(runs.items()))):
            results[name].append(timed([argv], work))
            print(f"round {i + 1} {name}: {results[name][-1][0]:.2f} s wall, {results[name][-1][1]:.2f} s CPU",
                  flush=True)
    for name, rows in results.items():
        print(f"{name}: median {statistics.median(r[0] for r in rows):.2f} s wall, "
              f"{statistics.median(r[1] for r in rows):.2f} s CPU")
    ratio = statistics.median(s[0] / m[0] for s, m in zip(results["split"], results["maps"]))
    print(f"split / maps wall ratio (median of rounds): {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
