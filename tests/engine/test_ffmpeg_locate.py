"""The bundled FFmpeg is found, runs, and has the encoders vidmill plans with."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from vidmill.engine.ffmpeg import encoders, ffmpeg_exe, ffmpeg_version, has_encoder

pytestmark = pytest.mark.integration


def test_ffmpeg_exe_is_an_absolute_runnable_binary():
    exe = ffmpeg_exe()
    assert Path(exe).is_absolute()
    assert Path(exe) == Path(exe).resolve()
    assert os.access(exe, os.X_OK)
    out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ffmpeg version")
    assert ffmpeg_exe() is exe  # cached


def test_version_is_a_dotted_release():
    version = ffmpeg_version()
    assert re.fullmatch(r"\d+(\.\d+)+", version), version
    assert int(version.split(".")[0]) >= 7


@pytest.mark.parametrize("name", ["libx264", "libx265", "libvpx-vp9", "aac", "libopus"])
def test_encoders_include(name):
    assert name in encoders()
    assert has_encoder(name)


def test_encoders_are_names_only():
    names = encoders()
    assert len(names) > 50
    assert "=" not in names and "Video" not in names  # the legend above the table is not parsed
    assert all(re.fullmatch(r"[\w.-]+", n) for n in names)
    assert not has_encoder("nosuchencoder")
