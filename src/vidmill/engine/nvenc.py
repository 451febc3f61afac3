"""h264_nvenc: the NVIDIA hardware H.264 encoder, run instead of libx264 for formats that ask for ``hardware``
where the host passed vidmill's trial encode (``ffmpeg.hardware_encoders``; never assumed from the build).

The same neutral fields as libx264, in NVENC's own options (FFmpeg ``-h encoder=h264_nvenc``):

- ``constant_qp`` N: ``-rc constqp -qp N`` with the I and B factors at 1 and offsets at 0, so I, P and B
  frames all get QP N (NVENC's defaults would move I and B away from it).
- ``constant_bitrate``: ``-rc cbr -b:v B -maxrate B -bufsize B`` (a one-second VBV buffer, as x264 gets).
- ``quality`` (CRF/cq): ``-rc vbr -cq Q``; with a ``bitrate`` it caps it (``-maxrate B -bufsize 2B``, as x264's
  CRF is capped), without one ``-b:v 0`` so NVENC's default bitrate does not.
- ``bitrate`` alone: ``-rc vbr -b:v B``. Nothing: ``-rc vbr -cq 23 -b:v 0`` (x264's default CRF).
- ``two_pass``: NVENC's own ``-multipass fullres`` in the one run (no separate first pass); builds without
  ``-multipass`` take the older ``-rc vbr_hq``/``cbr_hq``.
- ``hardware_preset`` (slow/medium/fast/hp/hq/ll/llhq/llhp): the build's own preset of that name when it has
  one, else FFmpeg's alias for it (p1-p7 and ``-tune``; FFmpeg's nvenc.c PRESET_ALIAS table).
- ``coder`` 1/0: ``-coder cabac``/``cavlc``; ``profile`` ``-profile:v``; ``level`` ``-level``.
"""

from __future__ import annotations

from vidmill.engine.codecs import VideoEncoder, level_str, num, safe

# preset -> (P preset, tune) where a build no longer lists the old name (FFmpeg's PRESET_ALIAS, SDK >= 10)
PRESET_ALIASES = {"slow": ("p7", "hq"), "medium": ("p4", "hq"), "fast": ("p1", "hq"), "hp": ("p1", "hq"),
                  "hq": ("p7", "hq"), "ll": ("p4", "ll"), "llhq": ("p7", "ll"), "llhp": ("p1", "ll")}
# a software preset (no hardware_preset given) -> the NVENC preset closest in speed
FROM_X264 = {"placebo": "slow", "veryslow": "slow", "slower": "slow", "slow": "slow", "medium": "medium",
             "fast": "fast", "faster": "fast", "veryfast": "hp", "superfast": "hp", "ultrafast": "hp"}
DEFAULT_NVENC_PRESET = "medium"
DEFAULT_NVENC_CQ = 23
CODERS = {1: "cabac", 0: "cavlc"}
PROFILES = ("baseline", "main", "high")


class Nvenc(VideoEncoder):
    name = "h264_nvenc"
    pix_fmts = ("yuv420p", "yuv444p")
    hardware = True
    runs_passes = False  # two_pass is NVENC's multipass inside the one run

    def __init__(self, fmt, warn, build: dict[str, frozenset[str]] | None = None):
        """``build``: the options this FFmpeg's h264_nvenc lists, with their named values
        (``ffmpeg.encoder_options``)."""
        super().__init__(fmt, warn)
        self.build = build or {}

    def speed_args(self):
        asked = self.fmt.hardware_preset
        if asked is None:
            asked = FROM_X264.get(str(self.vcp.preset), DEFAULT_NVENC_PRESET) if self.vcp and self.vcp.preset \
                else DEFAULT_NVENC_PRESET
        if asked in self.build.get("-preset", ()):
            return ["-preset", safe(asked)]
        preset, tune = PRESET_ALIASES[asked]
        return ["-preset", preset, "-tune", tune]

    def profile_args(self):
        asked = (self.vcp and self.vcp.vprofile) or self.fmt.profile
        args = []
        if asked is not None:
            if str(asked) in PROFILES:
                args += ["-profile:v", str(asked)]
            else:
                self.warn(f"profile {asked} is not one h264_nvenc encodes; the encoder chooses", "profile")
        if self.vcp and self.vcp.level is not None:
            args += ["-level", level_str(self.vcp.level)]
        return args

    def rate_args(self, two_pass):
        fmt = self.fmt
        rate = f"{int(fmt.bitrate)}k" if fmt.bitrate else None
        if fmt.constant_qp is not None:
            return ["-rc", "constqp", "-qp", str(int(fmt.constant_qp)), "-i_qfactor", "1", "-i_qoffset", "0",
                    "-b_qfactor", "1", "-b_qoffset", "0"]
        if fmt.constant_bitrate and rate:
            return [*self._rc("cbr", two_pass), "-b:v", rate, "-maxrate", rate, "-bufsize", rate]
        if fmt.quality is not None:
            cap = ["-b:v", rate, "-maxrate", rate, "-bufsize", f"{2 * int(fmt.bitrate)}k"] if rate else ["-b:v", "0"]
            return [*self._rc("vbr", False), "-cq", num(fmt.quality), *cap]
        if rate:
            return [*self._rc("vbr", two_pass), "-b:v", rate]
        return [*self._rc("vbr", False), "-cq", str(DEFAULT_NVENC_CQ), "-b:v", "0"]

    def _rc(self, mode: str, two_pass: bool) -> list[str]:
        if not two_pass:
            return ["-rc", mode]
        if "-multipass" in self.build:
            return ["-rc", mode, "-multipass", "fullres"]
        return ["-rc", f"{mode}_hq"]  # builds before the SDK 10 presets

    def param_args(self):
        v = self.vcp
        if v is None:
            return []
        self.unused("flags2", "partitions", "directpred", "me_method", "subq", "trellis", "refs", "cmp",
                    "me_range", "i_qfactor", "b_strategy", "qcomp", "qmin", "qmax", "qdiff", "flags", "sc_threshold",
                    "max_rate", "min_rate", "bufsize")
        args = []
        if v.coder is not None:
            args += ["-coder", CODERS[int(v.coder)]]
        if v.rc_lookahead is not None:
            args += ["-rc-lookahead", str(int(v.rc_lookahead))]
        return args
