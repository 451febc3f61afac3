"""Frame geometry: from a format's size fields and the probed source to an output size and a filter chain.

All sizes are computed on the picture as FFmpeg hands it to the filter graph: already autorotated (FFmpeg
applies the source's display matrix by default) and measured in square pixels (``display_width`` x
``display_height`` of ``MediaInfo``), then turned by the format's own ``rotate``. So ``size`` always means
the size of the output frame the viewer sees, and ``resolution`` looks at that picture's orientation.

Rules (seed 001, "frame" fields):

- ``resolution`` is the smaller side: height of a horizontal (or square) picture, width of a vertical one.
  It overrides ``size``/``width``/``height``.
- ``size`` "WxH", or ``width`` and ``height`` together, give both sides. One side alone: the other follows
  the output aspect ratio. No size field: the source size.
- The output aspect ratio is ``aspect_ratio`` when given, else the source's. With ``aspect_ratio`` and no
  size field the source's smaller side is kept and the other side follows the aspect ratio.
- ``resize_mode`` ``scale`` (default) stretches the picture to the output frame. ``crop`` keeps the source
  aspect: the picture is scaled so that its *smaller side matches the output's smaller side*; the longer
  side then either overflows (centre-cropped) or falls short (black bars, centred). That is the
  "cropped or black bars are added, depending on the output dimensions" of the seed: 16:9 into 4:3 is a
  centre cut, 4:3 into 16:9 is pillar-boxed, horizontal into vertical is letter-boxed.
- Sizes are even (yuv420p needs it): sides the user typed are rounded down to even, derived sides to the
  nearest even number; pixels are square on output (``setsar=1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

# Seed: "Possible values are 90, 180, 270". 180 is a flip on both axes (no resampling).
ROTATE_FILTERS: dict[int, tuple[str, ...]] = {
    90: ("transpose=clock",),
    180: ("hflip", "vflip"),
    270: ("transpose=cclock",),
}
# Keep the frame rate: bwdif's default (send_field) would double it.
DEINTERLACE_FILTER = "bwdif=mode=send_frame"
# Aspect ratios closer than this are "the same" (1 px on a 1080p frame is ~0.1%).
_ASPECT_TOLERANCE = 0.005


def even(x: float) -> int:
    """Nearest even integer, at least 2 (for sides derived from a ratio)."""
    return max(2, int(x / 2 + 0.5) * 2)


def floor_even(x: float) -> int:
    """Largest even integer not above ``x``, at least 2 (for sides the user or the source fixed)."""
    return max(2, int(x) // 2 * 2)


def base_size(info, rotate: int | None) -> tuple[float, float]:
    """The source picture after autorotation, SAR and the format's ``rotate``: what geometry works on."""
    w, h = float(info.display_width), float(info.display_height)
    return (h, w) if rotate in (90, 270) else (w, h)


@dataclass(frozen=True)
class Requested:
    """The sides a format asked for, before any derivation (what the upscale rule compares)."""

    resolution: int | None = None
    width: int | None = None
    height: int | None = None


def requested(fmt) -> Requested:
    if fmt.resolution:
        return Requested(resolution=int(fmt.resolution))
    wh = fmt.size_wh
    if wh:
        return Requested(width=int(wh[0]), height=int(wh[1]))
    return Requested(width=int(fmt.width) if fmt.width else None, height=int(fmt.height) if fmt.height else None)


def is_larger(req: Requested, base: tuple[float, float]) -> bool:
    """Seed's upscale test: a side the user asked for is greater than the same side of the input."""
    bw, bh = base
    if req.resolution:
        return req.resolution > min(bw, bh)
    return bool((req.width and req.width > bw) or (req.height and req.height > bh))


def target_size(fmt, base: tuple[float, float], *, source_size: bool = False) -> tuple[int, int, list[str]]:
    """Output (width, height) and notes for warnings. ``source_size`` forces the input's dimensions."""
    bw, bh = base
    horizontal = bw >= bh
    src_aspect = bw / bh
    aspect = fmt.aspect_ratio_value
    notes: list[str] = []
    if source_size:
        return floor_even(bw), floor_even(bh), notes
    out_aspect = aspect or src_aspect
    req = requested(fmt)
    if req.resolution:
        r = req.resolution
        if horizontal:
            return even(r * out_aspect), floor_even(r), notes
        return floor_even(r), even(r / out_aspect), notes
    if req.width and req.height:
        w, h = floor_even(req.width), floor_even(req.height)
        if aspect and abs(aspect - w / h) / aspect > _ASPECT_TOLERANCE:
            notes.append("aspect_ratio is ignored: the output size sets both sides")
        return w, h, notes
    if req.width:
        return floor_even(req.width), even(req.width / out_aspect), notes
    if req.height:
        return even(req.height * out_aspect), floor_even(req.height), notes
    if aspect:
        if horizontal:
            return even(bh * aspect), floor_even(bh), notes
        return floor_even(bw), even(bw / aspect), notes
    return floor_even(bw), floor_even(bh), notes


def fit_filters(mode: str | None, base: tuple[float, float], w: int, h: int) -> list[str]:
    """Scale (and for ``crop``, crop or pad) the picture into a w x h frame."""
    bw, bh = base
    src_aspect = bw / bh
    if mode != "crop" or abs(src_aspect - w / h) / src_aspect <= _ASPECT_TOLERANCE:
        return [f"scale={w}:{h}"]
    if w >= h:  # match the heights; the width overflows or falls short
        sw, sh = even(h * src_aspect), h
    else:
        sw, sh = w, even(w / src_aspect)
    if sw >= w and sh >= h:
        x, y = (sw - w) // 2 // 2 * 2, (sh - h) // 2 // 2 * 2
        return [f"scale={sw}:{sh}", f"crop={w}:{h}:{x}:{y}"]
    x, y = (w - sw) // 2 // 2 * 2, (h - sh) // 2 // 2 * 2
    return [f"scale={sw}:{sh}", f"pad={w}:{h}:{x}:{y}:black"]


@dataclass
class Geometry:
    width: int
    height: int
    filters: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def vf(self) -> str:
        return ",".join(self.filters)


def geometry(fmt, info, *, source_size: bool = False) -> Geometry:
    """Output size and the ``-vf`` chain: deinterlace, frame rate, rotate, scale/crop/pad, square pixels."""
    rotate = int(fmt.rotate) if fmt.rotate else None
    base = base_size(info, rotate)
    w, h, notes = target_size(fmt, base, source_size=source_size)
    filters: list[str] = []
    if fmt.deinterlace:
        filters.append(DEINTERLACE_FILTER)
    rate = fmt.framerate_value
    if rate:
        # Validated upstream ("30", "29.97", "30000/1001"); re-render so only digits reach the graph.
        filters.append(f"fps={format_rate(rate)}")
    if rotate:
        filters.extend(ROTATE_FILTERS[rotate])
    filters.extend(fit_filters(None if source_size else fmt.resize_mode, base, w, h))
    filters.append("setsar=1")
    return Geometry(w, h, filters, notes)


def format_rate(rate: str) -> str:
    frac = Fraction(str(rate))
    if frac <= 0:
        raise ValueError(f"frame rate must be positive: {rate!r}")
    return str(frac.numerator) if frac.denominator == 1 else f"{frac.numerator}/{frac.denominator}"


def output_fps(fmt, info) -> float | None:
    """Frame rate of the output: the format's ``framerate`` or the source's."""
    rate = fmt.framerate_value
    if rate:
        return float(Fraction(str(rate)))
    return info.fps
