"""vidmill: self-hosted video transcoding on FFmpeg, wire-compatible with Qencode v1."""

__version__ = "0.1.0"
