"""libvpx-vp9 and libvpx (VP8): one FFmpeg wrapper, hence shared options."""

from __future__ import annotations

from vidmill.engine.codecs import (
    DEFAULT_PIX_FMT, DEFAULT_VP8_CAP_K, DEFAULT_VP8_CRF, DEFAULT_VP9_CRF, VPX_CPU_USED, VPX_DEADLINE,
    VideoEncoder, flags_arg, num, rate_control,
)


class Vpx(VideoEncoder):
    """What libvpx-vp9 and libvpx share."""

    def speed_args(self):
        if self.vcp and self.vcp.preset:
            self.warn(f"video_codec_parameters.preset is not used by {self.name}", "video_codec_parameters.preset")
        return ["-deadline", VPX_DEADLINE, "-cpu-used", str(VPX_CPU_USED)]

    def pix_fmt(self):
        want = self.fmt.pix_format or DEFAULT_PIX_FMT
        if want.startswith("yuvj"):  # libvpx has no full-range formats: same planes, limited range
            self.warn(f"pix_format {want} is not supported by {self.name}; encoded as {want[:3] + want[4:]}",
                      "pix_format")
            want = want[:3] + want[4:]
        if want not in self.pix_fmts:
            self.warn(f"pix_format {want} is not supported by {self.name}; encoded as {DEFAULT_PIX_FMT}",
                      "pix_format")
            want = DEFAULT_PIX_FMT
        return want

    def param_args(self):
        v = self.vcp
        if v is None:
            return []
        args: list[str] = []
        for key, opt in (("qmin", "-qmin"), ("qmax", "-qmax"), ("rc_lookahead", "-lag-in-frames")):
            value = getattr(v, key, None)
            if value is not None:
                args += [opt, num(value)]
        self.unused("level", "coder", "flags2", "partitions", "directpred", "me_method", "subq", "trellis", "refs",
                    "cmp", "me_range", "sc_threshold", "i_qfactor", "b_strategy", "qcomp", "qdiff")
        if v.flags:
            args += flags_arg(v.flags, self.warn)
        return args


class Vp9(Vpx):
    name = "libvpx-vp9"

    def speed_args(self):
        return [*super().speed_args(), "-row-mt", "1"]

    def rate_args(self, two_pass):
        # VP9 constant quality is "-crf N -b:v 0"; with a bitrate it is constrained quality.
        crf = (lambda q: ["-crf", q, "-b:v", f"{int(self.fmt.bitrate)}k"]) if self.fmt.bitrate else \
            (lambda q: ["-crf", q, "-b:v", "0"])
        return rate_control(self.fmt, self.vcp, crf_default=DEFAULT_VP9_CRF, crf_args=crf, mbps=False,
                            two_pass=two_pass, vbv_cap=False)


class Vp8(Vpx):
    name = "libvpx"
    pix_fmts = ("yuv420p",)

    def rate_args(self, two_pass):
        cap = int(self.fmt.bitrate) if self.fmt.bitrate else DEFAULT_VP8_CAP_K

        def crf(q: str) -> list[str]:
            if float(q) < 4:  # libvpx VP8 CRF range is 4..63
                self.warn(f"quality {q} is below libvpx's minimum; encoded with 4", "quality")
                q = "4"
            return ["-crf", q, "-b:v", f"{cap}k"]

        return rate_control(self.fmt, self.vcp, crf_default=DEFAULT_VP8_CRF, crf_args=crf, mbps=False,
                            two_pass=two_pass, vbv_cap=False)
