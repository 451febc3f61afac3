"""The allowed values of the Qencode v1 query: outputs, codecs, profiles, levels, colour tables, schemes."""

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

PROFILES_BY_CODEC = {
    "libx264": ("baseline", "main", "high", "high10", "high422", "high444"),
    "libx265": ("main", "main10", "main12", "main422-10", "main444-8", "main444-10", "mainstillpicture"),
    "libvpx": ("0", "1", "2", "3"),
    "libvpx-vp9": ("0", "1", "2", "3"),
}
PROFILES = tuple(dict.fromkeys(p for ps in PROFILES_BY_CODEC.values() for p in ps))
LEVELS = (
    "1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0", "3.1", "3.2",
    "4.0", "4.1", "4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2",
)
PIX_FORMATS = ("yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuv420p10le")
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
