from __future__ import annotations

import time

import av
import httpx


def wait_task(task, timeout: float = 180.0, interval: float = 0.3) -> dict:
    """Poll with the SDK's own status() until the task finishes (as its samples do)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = task.status()
        assert status is not None, "status() found no such task"
        seen.append((status["status"], status["percent"]))
        if status["status"] == "completed" or status["error"]:
            status["_seen"] = seen
            return status
        time.sleep(interval)
    raise AssertionError(f"task did not finish in {timeout}s; last statuses {seen[-5:]}")


def download(url: str, dest) -> None:
    with httpx.stream("GET", url, timeout=30) as r:
        r.raise_for_status()
        with open(dest, "wb") as f:
            for chunk in r.iter_bytes():
                f.write(chunk)


def streams(path) -> dict:
    """What PyAV reads back from an output: the facts we assert on."""
    with av.open(str(path)) as c:
        out = {"format": c.format.name, "duration": (c.duration or 0) / 1_000_000}
        for s in c.streams:
            if s.type == "video":
                out["video"] = {"codec": s.codec_context.name, "width": s.codec_context.width,
                                "height": s.codec_context.height, "pix_fmt": s.codec_context.pix_fmt,
                                "profile": s.codec_context.profile,
                                "fps": float(s.average_rate) if s.average_rate else None}
            elif s.type == "audio":
                out["audio"] = {"codec": s.codec_context.name, "channels": s.codec_context.channels,
                                "sample_rate": s.codec_context.sample_rate}
        return out


def macroblock_qps(path) -> list[tuple[str, dict[int, int]]]:
    """Per decoded frame: (picture type, {QP: macroblocks}), from the H.264 decoder's own export of the QP it
    used for every macroblock (``export_side_data venc_params``: libavutil's AVVideoEncParams, read as the
    struct it is: nb_blocks, blocks_offset, block_size, type, qp, delta_qp[4][2]; each block src_x, src_y,
    w, h, delta_qp)."""
    import struct
    from collections import Counter

    out = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}
        for frame in c.decode(stream):
            (data,) = [bytes(sd) for sd in frame.side_data if "VIDEO_ENC_PARAMS" in str(sd.type)]
            blocks, offset, size, _kind, qp = struct.unpack_from("=I4xQQiI", data, 0)
            qps = Counter(qp + struct.unpack_from("=4ii", data, offset + i * size)[4] for i in range(blocks))
            out.append(({1: "I", 2: "P", 3: "B"}.get(int(frame.pict_type), "?"), dict(qps)))
    return out
