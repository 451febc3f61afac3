"""The allowed values of the Qencode v1 query: outputs, codecs, profiles, levels, colour tables, schemes."""

from __future__ import annotations

from dataclasses import dataclass

OUTPUTS = (
    "mp4", "webm", "advanced_hls", "advanced_dash", "webm_dash", "repack", "mp3", "hls_audio", "flac",
    "gif", "thumbnail", "thumbnails", "metadata", "speech_to_text", "vmaf",
)
IMAGE_OUTPUTS = frozenset({"thumbnail", "thumbnails", "gif"})
H26X_CODECS = frozenset({"libx264", "libx265"})
VPX_CODECS = frozenset({"libvpx", "libvpx-vp9"})
LCEVC_CODECS = frozenset({"lcevc_h264", "lcevc_hevc"})
AV1_CODECS = frozenset({"libsvtav1", "libaom-av1", "librav1e"})
VIDEO_CODECS = tuple(sorted(H26X_CODECS | VPX_CODECS | LCEVC_CODECS | AV1_CODECS))
AUDIO_CODECS = ("aac", "libfdk_aac", "libvorbis", "libopus")
# What each file container can hold (explicit codecs only; the engine picks defaults).
CONTAINER_VIDEO_CODECS = {
    "mp4": H26X_CODECS | {"libvpx-vp9"} | LCEVC_CODECS | AV1_CODECS,
    "webm": VPX_CODECS | AV1_CODECS,
}
CONTAINER_AUDIO_CODECS = {"mp4": frozenset({"aac", "libfdk_aac"}), "webm": frozenset({"libvorbis", "libopus"})}



@dataclass(frozen=True)
class Profile:
    """One encoder profile: the most chroma it carries (420, 422, 444) and the bit depths it carries."""

    name: str
    chroma: int
    depths: tuple[int, ...]


# THE codec/profile table: the schema's choices, the encoders' -profile:v and their pix_format upgrades all
# read it. Each codec's profiles go from least to most capable: the first one that carries a pixel format is
# the one an encode is upgraded to. (x265 checked with this FFmpeg: a profile that cannot carry the input's
# chroma or depth is an error, "main10 profile not compatible with i444 input chroma subsampling".)
CODEC_PROFILES: dict[str, tuple[Profile, ...]] = {
    "libx264": (Profile("baseline", 420, (8,)), Profile("main", 420, (8,)), Profile("high", 420, (8,)),
                Profile("high10", 420, (8, 10)), Profile("high422", 422, (8, 10)), Profile("high444", 444, (8, 10))),
    "libx265": (Profile("main", 420, (8,)), Profile("main10", 420, (8, 10)), Profile("main12", 420, (8, 10, 12)),
                Profile("main422-10", 422, (8, 10)), Profile("main444-8", 444, (8,)),
                Profile("main444-10", 444, (8, 10)), Profile("mainstillpicture", 420, (8,))),
    # VP8's profiles 0-3 trade decoding cost, all 8-bit 4:2:0; VP9's: 0 8-bit 4:2:0, 1 8-bit 4:2:2/4:4:4,
    # 2 10/12-bit 4:2:0, 3 10/12-bit 4:2:2/4:4:4
    "libvpx": tuple(Profile(str(n), 420, (8,)) for n in range(4)),
    "libvpx-vp9": (Profile("0", 420, (8,)), Profile("1", 444, (8,)), Profile("2", 420, (10, 12)),
                   Profile("3", 444, (10, 12))),
}
DEFAULT_PROFILES = {"libx264": "main"}  # seed: "Defaults to main"; the others let the encoder choose
PROFILES_BY_CODEC = {codec: tuple(p.name for p in ps) for codec, ps in CODEC_PROFILES.items()}
PROFILES = tuple(dict.fromkeys(p for ps in PROFILES_BY_CODEC.values() for p in ps))
LEVELS = (
    "1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0", "3.1", "3.2",
    "4.0", "4.1", "4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2",
)
# pixel format -> (chroma, bit depth)
PIX_FACTS = {"yuv420p": (420, 8), "yuv422p": (422, 8), "yuv444p": (444, 8), "yuvj420p": (420, 8),
             "yuvj422p": (422, 8), "yuv420p10le": (420, 10)}
PIX_FORMATS = tuple(PIX_FACTS)


def choose_profile(codec: str, asked: str | None, pix_fmt: str) -> tuple[str | None, str | None]:
    """The profile to encode ``pix_fmt`` with when ``asked`` (or nothing) was asked, and a warning if that is
    not what was asked: the asked (or default) profile if it carries the pixel format, else the first
    profile of the codec that does. ``None``: let the encoder choose."""
    profiles = CODEC_PROFILES.get(codec, ())
    by_name = {p.name: p for p in profiles}
    note = None
    if asked is not None and asked not in by_name:
        note = f"profile {asked} is not a {codec} profile ({', '.join(by_name) or 'none'}); "
        asked = None
    want = asked or DEFAULT_PROFILES.get(codec)
    if want is None:
        return None, (note + "the encoder chose its own") if note else None
    chroma, depth = PIX_FACTS.get(pix_fmt, (420, 8))
    fits = [p.name for p in profiles if p.chroma >= chroma and depth in p.depths]
    if want in fits or not fits:
        return want, (note + f"encoded with {want}") if note else None
    if asked:
        note = (note or "") + f"profile {asked} cannot carry {pix_fmt}; encoded with {fits[0]}"
    return fits[0], note
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
ME_METHODS = ("dia", "hex", "umh", "esa", "tesa", "epzs", "full")
CMP_FUNCTIONS = (
    "sad", "sse", "satd", "dct", "psnr", "bit", "rd", "zero", "vsad", "vsse", "nsse", "w53", "w97",
    "dctmax", "chroma",
)
SWS_FLAGS = (
    "fast_bilinear", "bilinear", "bicubic", "experimental", "neighbor", "area", "bicublin", "gauss",
    "sinc", "lanczos", "spline",
)
FLAGS2 = ("bpyramid", "wpred", "mixed_refs", "dct8x8", "fastpskip", "aud", "mbtree", "psy", "ssim")
PARTITIONS = ("partp8x8", "partp4x4", "partb8x8", "parti8x8", "parti4x4")
FLAGS = (
    "mv4", "qpel", "loop", "qscale", "pass1", "pass2", "gray", "emu_edge", "psnr", "truncated", "ildct",
    "low_delay", "global_header", "bitexact", "aic", "cbp", "qprd", "ilme", "cgop",
)
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
COLOR_SPACES = (
    "rgb", "bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycocg", "bt2020nc", "bt2020_ncl",
    "bt2020c", "bt2020_cl", "smpte2085",
)
COLOR_RANGES = ("tv", "mpeg", "pc", "jpeg")
COLOR_TRCS = (
    "bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear", "log", "log100", "log_sqrt",
    "log316", "iec61966_2_4", "bt1361", "iec61966_2_1", "bt2020_10bit", "bt2020_12bit", "smpte2084",
    "smpte428", "arib-std-b67",
)
COLOR_PRIMARIES = (
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
    "smpte432", "jedec-p22",
)
S3_PERMISSIONS = (
    "private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write",
)
DESTINATION_SCHEMES = ("s3", "b2", "azblob", "ftp", "ftps", "sftp")
SOURCE_SCHEMES = ("http", "https", "tus", "s3", "ftp", "ftps", "sftp")
LCEVC_TUNES = ("vq", "vmaf", "vmaf_neg", "psnr", "ssim", "animation")
