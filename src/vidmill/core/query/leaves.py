"""The leaf objects of a query: destinations, codec parameters, logos, subtitles, protection, 360, stitch."""

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from vidmill.core.query.fields import (
    Flag, Hex32, HttpUrl, Secret, Seconds, Token, _Model, _choice, _float, _int, _list, _t, _url, _vidmill_error,
)
from vidmill.core.query.media_values import _as_flag_seq, _as_level, _as_profile
from vidmill.core.query.values import _as_base64, _as_choice, _as_choice_re, _as_hex, _as_int, _as_url
from vidmill.core.query.vocabulary import (
    CMP_FUNCTIONS, DESTINATION_SCHEMES, FLAGS, FLAGS2, LCEVC_TUNES, ME_METHODS, PARTITIONS, PRESETS,
    S3_PERMISSIONS, SOURCE_SCHEMES, SWS_FLAGS,
)


class Destination(_Model):
    """Where an output is stored (S3, B2, Azure, FTP, SFTP)."""

    url: Annotated[str, BeforeValidator(lambda v: _as_url(v, DESTINATION_SCHEMES))]
    key: Secret = None
    secret: Secret = None
    permissions: _choice(S3_PERMISSIONS) = None
    storage_class: _t(str, lambda v: _as_choice_re(
        v, r"[A-Z][A-Z_]{0,63}", "an S3 storage class, e.g. STANDARD_IA")) = None
    cache_control: _t(str, lambda v: _as_choice_re(
        v, r"[A-Za-z][A-Za-z0-9=, -]{0,255}", 'cache directives like "public, max-age=86400"')) = None
    is_passive: Flag = None
    use_tls: Flag = None


class VideoCodecParameters(_Model):
    """Advanced encoder settings (x264/x265, SVT-AV1, LCEVC); x264's rate fields are in Mbps."""

    vprofile: _t(str, _as_profile) = None
    level: _t(str, _as_level) = None
    coder: _int(0, 1) = None
    flags2: _t(str, lambda v: _as_flag_seq(v, FLAGS2)) = None
    partitions: _t(str, lambda v: _as_flag_seq(v, PARTITIONS)) = None
    directpred: _int(0, 3) = None
    me_method: _choice(ME_METHODS) = None
    subq: _int(0, 11) = None
    trellis: _int(0, 2) = None
    refs: _int(0, 16) = None
    cmp: _t(str, lambda v: str(_as_int(v, 0, 15)) if not isinstance(v, str) or v.isdigit()
            else _as_choice(v, CMP_FUNCTIONS)) = None
    me_range: _int(0, 1024) = None
    sc_threshold: _int(-1, 1000) = None
    i_qfactor: _float(-31, 31) = None
    b_strategy: _int(0, 2) = None
    qcomp: _float(0, 1) = None
    qmin: _int(-1, 69) = None
    qmax: _int(-1, 1024) = None
    qdiff: _int(-1, 69) = None
    max_rate: _float(0, 200000, above_lo=True) = None
    min_rate: _float(0, 200000, above_lo=True) = None
    bufsize: _float(0, 200000, above_lo=True) = None
    sws_flags: _choice(SWS_FLAGS) = None
    preset: _choice(PRESETS) = None
    flags: _t(str, lambda v: _as_flag_seq(v, FLAGS)) = None
    rc_lookahead: _int(0, 250) = None
    # SVT-AV1
    tune: _int(0, 2) = None
    aq_mode: _int(0, 2) = None
    film_grain: _int(0, 50) = None
    fast_decode: _int(0, 2) = None
    enable_dlf: _int(0, 2) = None
    enable_restoration: _int(0, 1) = None
    hierarchical_levels: _int(2, 5) = None
    pred_struct: _int(0, 2) = None
    # LCEVC
    lcevc_tune: _choice(LCEVC_TUNES) = None
    scaling_mode_level0: _choice(("2D", "1D", "0D")) = None
    dc_dithering_type: _choice(("None", "Uniform", "none", "uniform")) = None
    dc_dithering_strength: _int(0, 10) = None
    dc_dithering_qp_start: _int(0, 51) = None
    dc_dithering_qp_saturate: _int(0, 51) = None
    m_ad_mode: _choice(("disabled", "replace", "separate")) = None
    m_hf_strength: _float(0, 1) = None
    m_lf_strength: _float(0, 1) = None

    @model_validator(mode="after")
    def _check_ranges(self) -> "VideoCodecParameters":
        if self.qmin is not None and self.qmax is not None and self.qmin > self.qmax:
            raise _vidmill_error("qmin", f"must not exceed qmax ({self.qmax})")
        return self


class Logo(_Model):
    """An image overlay, optionally for a time range."""

    source: Annotated[str, BeforeValidator(lambda v: _as_url(v, ("http", "https")))]
    x: _int(0, 8192) = None
    y: _int(0, 8192) = None
    opacity: _float(0, 1) = None
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None


class SubtitleSource(_Model):
    source: Annotated[str, BeforeValidator(lambda v: _as_url(v, ("http", "https")))]
    language: _t(str, lambda v: _as_choice_re(
        v, r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?", "a language code like en, eng or en-US")) = None


class Subtitles(_Model):
    sources: _list(SubtitleSource, 0, 50) = None
    copy_: Flag = Field(None, alias="copy")


class Encryption(_Model):
    """AES-128 HLS encryption."""

    key: Hex32 = None
    iv: Hex32 = None
    key_url: HttpUrl = None


class CencDrm(_Model):
    """Widevine/PlayReady common encryption."""

    key: Hex32 = None
    key_id: Hex32 = None
    iv: _t(str, lambda v: _as_hex(v, (16, 32))) = None
    pssh: _t(str, _as_base64) = None
    la_url: HttpUrl = None


class FpsDrm(_Model):
    """FairPlay; ``key_url`` may be skd:// (e.g. EZDRM)."""

    key: Hex32 = None
    iv: Hex32 = None
    key_url: _url("skd", "http", "https") = None


class Inject360(_Model):
    side_data_type: Token = None
    projection: _choice(("equirectangular", "cubemap", "mesh", "fisheye")) = None
    vr180: Flag = None
    stereo: _choice(("mono", "top-bottom", "left-right")) = None
    full_width: _int(0, 65536) = None
    full_height: _int(0, 65536) = None
    cropped_width: _int(0, 65536) = None
    cropped_height: _int(0, 65536) = None
    cropped_left: _int(0, 65536) = None
    cropped_top: _int(0, 65536) = None


class StitchItem(_Model):
    """One input of a stitch job (a bare URL on the wire becomes ``StitchItem(url=...)``)."""

    url: Annotated[str, BeforeValidator(lambda v: _as_url(v, SOURCE_SCHEMES))]
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None
