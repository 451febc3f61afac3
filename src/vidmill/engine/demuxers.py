"""Which containers vidmill reads sources with: one table, shared by the probe (PyAV) and the planner (FFmpeg).

The probe opens a source with ``format_whitelist`` set to these demuxers, so a playlist, a concat script or an
image pattern is refused before libavformat follows anything it names; the planner then pins the same demuxer
with ``-f`` at encode time.
"""

from __future__ import annotations

# The containers a source may be read with: libavformat's full demuxer name, as PyAV's probe reports it in
# ``format_name``, -> the name ``-f`` takes (any one alias of a comma-separated name selects that demuxer).
# Every one reads a single self-contained file. Checked against ``ffmpeg -demuxers`` of the FFmpeg 9 build
# (tests/engine/test_encode_real.py). Left out on purpose: the playlist and text demuxers the probe refuses
# (hls, dash, concat, tty), image2 (its file name is a pattern of other files), still-image pipes other than
# JPEG, and rarer or legacy formats (rm, wtv, nut, obu/av1, aiff, caf, ...): add a line when one is needed.
DEMUXERS = {
    # containers
    "mov,mp4,m4a,3gp,3g2,mj2": "mov",  # MP4, MOV, M4V, 3GP
    "matroska,webm": "matroska",       # MKV, WebM
    "avi": "avi",
    "mpeg": "mpeg",                    # MPEG-PS: .mpg, .vob
    "mpegts": "mpegts",                # .ts, .m2ts
    "mxf": "mxf",
    "flv": "flv",
    "asf": "asf",                      # WMV, WMA
    "ogg": "ogg",                      # Theora, Vorbis, Opus
    "dv": "dv",
    # raw video streams
    "h264": "h264",
    "hevc": "hevc",
    "m4v": "m4v",                      # MPEG-4 part 2
    "mpegvideo": "mpegvideo",          # MPEG-1/2 elementary stream (.m2v)
    "ivf": "ivf",                      # VP8 / VP9 / AV1
    "yuv4mpegpipe": "yuv4mpegpipe",    # .y4m
    "mjpeg": "mjpeg",
    "jpeg_pipe": "jpeg_pipe",          # what libavformat calls a raw MJPEG stream detected by content
    "gif": "gif",                      # animated GIF
    # audio only (every encoded output needs video, so these are refused for that today)
    "wav": "wav",
    "mp3": "mp3",
    "aac": "aac",
    "flac": "flac",
}
NOT_MEDIA = {
    "hls": "an HLS playlist", "dash": "a DASH manifest", "concat": "an ffconcat playlist", "tty": "a text file",
    "image2": "an image sequence (its name is a pattern of other files)",
}


# libavformat's format_whitelist: any alias of an allowed demuxer's comma-separated name matches it
FORMAT_WHITELIST = ",".join(sorted(set(DEMUXERS.values())))
# what to tell a user whose source is in none of them
READABLE = ("MP4/MOV, MKV/WebM, AVI, MPEG-PS, MPEG-TS, MXF, FLV, ASF/WMV, Ogg, DV, animated GIF, "
            "raw H.264/HEVC/MPEG-4/MPEG-2/IVF/Y4M/MJPEG streams")
