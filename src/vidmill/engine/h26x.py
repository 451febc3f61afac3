"""libx264 and libx265: Qencode's x264-style ``video_codec_parameters`` mapped to each encoder's options."""

from __future__ import annotations

from vidmill.engine.codecs import (
    DEFAULT_SC_THRESHOLD, DEFAULT_X264_CRF, DEFAULT_X264_PRESET, DEFAULT_X265_CRF, DEFAULT_X265_PRESET,
    VideoEncoder, flags_arg, level_str, num, rate_control, safe, tokens,
)

# Qencode flags2 -> libx264 private AVOption (on, off).
X264_FLAGS2 = {
    "bpyramid": ("-b-pyramid", "normal", "none"),
    "wpred": ("-weightb", "1", "0"),
    "mixed_refs": ("-mixed-refs", "1", "0"),
    "dct8x8": ("-8x8dct", "1", "0"),
    "fastpskip": ("-fast-pskip", "1", "0"),
    "aud": ("-aud", "1", "0"),
    "mbtree": ("-mbtree", "1", "0"),
    "psy": ("-psy", "1", "0"),
    "ssim": ("-ssim", "1", "0"),
}
X264_PARTITIONS = {"partp8x8": "p8x8", "partp4x4": "p4x4", "partb8x8": "b8x8", "parti8x8": "i8x8", "parti4x4": "i4x4"}
# Qencode's names (FFmpeg's old -me_method) -> libx264 -me_method values.
X264_ME = {"epzs": "dia", "dia": "dia", "hex": "hex", "umh": "umh", "full": "esa", "esa": "esa", "tesa": "tesa"}
# vcp key -> generic FFmpeg option taking a number, in the order they are emitted.
X264_NUMERIC = {
    "directpred": "-direct-pred", "subq": "-subq", "trellis": "-trellis", "refs": "-refs", "me_range": "-me_range",
    "i_qfactor": "-i_qfactor", "b_strategy": "-b_strategy", "qcomp": "-qcomp", "qmin": "-qmin", "qmax": "-qmax",
    "qdiff": "-qdiff", "rc_lookahead": "-rc-lookahead",
}


class X264(VideoEncoder):
    name = "libx264"

    def speed_args(self):
        return ["-preset", safe((self.vcp and self.vcp.preset) or DEFAULT_X264_PRESET)]

    def profile_args(self):
        args = super().profile_args()
        if self.vcp and self.vcp.level is not None:
            args += ["-level:v", level_str(self.vcp.level)]
        return args

    def rate_args(self, two_pass):
        fmt = self.fmt
        if fmt.constant_qp is not None:
            # x264's constant-quantizer mode; ipratio = pbratio = 1 so I, P and B frames all get this QP
            # (x264 would otherwise give I frames ~3 less and B frames ~2 more); CQP turns AQ and MB-tree off
            return ["-qp", str(int(fmt.constant_qp)), "-i_qfactor", "1", "-b_qfactor", "1"]
        if fmt.constant_bitrate and fmt.bitrate:
            rate = f"{int(fmt.bitrate)}k"  # -b:v = -maxrate with a one-second VBV buffer
            return ["-b:v", rate, "-maxrate", rate, "-bufsize", rate]
        # seed: for libx264 (only) max_rate/min_rate/bufsize are given in Mbps
        return rate_control(fmt, self.vcp, crf_default=DEFAULT_X264_CRF, crf_args=lambda q: ["-crf", q],
                            mbps=True, two_pass=two_pass)

    def param_args(self):
        v = self.vcp
        args = ["-sc_threshold", self.scene_cut(DEFAULT_SC_THRESHOLD)]
        if v is None:
            return args
        if v.coder is not None:
            args += ["-coder", str(int(v.coder))]
        if v.flags2:
            for on, name in tokens(v.flags2):
                if name in X264_FLAGS2:
                    opt, yes, no = X264_FLAGS2[name]
                    args += [opt, yes if on else no]
                else:
                    self.warn(f"video_codec_parameters.flags2 {name} is not known to libx264; ignored",
                              "video_codec_parameters.flags2")
        if v.partitions:
            parts = [X264_PARTITIONS[n] for on, n in tokens(v.partitions) if on and n in X264_PARTITIONS]
            if parts:
                args += ["-partitions", ",".join(parts)]
        if v.me_method:
            args += ["-me_method", X264_ME[str(v.me_method).lower()]]
        if v.cmp is not None:
            args += ["-cmp", safe(v.cmp)]
        for key, opt in X264_NUMERIC.items():
            value = getattr(v, key, None)
            if value is not None:
                args += [opt, num(value)]
        if v.flags:
            args += flags_arg(v.flags, self.warn)
        return args


# vcp key -> x265 parameter; values are numbers.
X265_NUMERIC = {"refs": "ref", "subq": "subme", "me_range": "merange", "qcomp": "qcomp", "qmin": "qpmin",
                "qmax": "qpmax", "qdiff": "qpstep", "b_strategy": "b-adapt", "rc_lookahead": "rc-lookahead",
                "trellis": "rdoq-level"}
X265_ME = {"epzs": "dia", "dia": "dia", "hex": "hex", "umh": "umh", "full": "full", "esa": "full", "tesa": "full"}


class X265(VideoEncoder):
    name = "libx265"

    def speed_args(self):
        return ["-preset", safe((self.vcp and self.vcp.preset) or DEFAULT_X265_PRESET)]

    def rate_args(self, two_pass):
        return rate_control(self.fmt, self.vcp, crf_default=DEFAULT_X265_CRF, crf_args=lambda q: ["-crf", q],
                            mbps=False, two_pass=two_pass)

    def param_args(self):
        v = self.vcp
        params = [("log-level", "error"), ("scenecut", self.scene_cut(DEFAULT_SC_THRESHOLD))]
        args: list[str] = []
        if self.segment:  # libx265 ignores -sc_threshold and opens GOPs by default; forced frames must be IDR
            gop = str(self.segment[1])
            params += [("keyint", gop), ("min-keyint", gop), ("open-gop", "0")]
            args += ["-forced-idr", "1"]
        if v is not None:
            if v.level is not None:
                params.append(("level-idc", level_str(v.level)))
            if v.me_method:
                params.append(("me", X265_ME[str(v.me_method).lower()]))
            if v.i_qfactor:
                params.append(("ipratio", num(round(1 / abs(float(v.i_qfactor)), 4))))
            for key, name in X265_NUMERIC.items():
                value = getattr(v, key, None)
                if value is not None:
                    params.append((name, num(value)))
            self.unused("coder", "flags2", "partitions", "directpred", "cmp")
            if v.flags:
                args += flags_arg(v.flags, self.warn)
        return args + ["-x265-params", ":".join(f"{k}={safe(val)}" for k, val in params)]

    def pass_args(self, n, log):
        # libx265 reads -pass but keeps its stats under its own option, not -passlogfile.
        return ["-pass", str(n), "-x265-stats", str(log) + ".x265"]

    def tag_args(self) -> list[str]:
        return ["-tag:v", "hvc1"]  # Apple players only accept hvc1-tagged HEVC in MP4
