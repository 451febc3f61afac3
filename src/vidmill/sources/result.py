"""What a source fetch returns, and the one way every source module writes its download to disk."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vidmill.errors import SourceError, SourceTooLarge


@dataclass(frozen=True)
class FetchResult:
    """A downloaded source: where it is, how many bytes, and the server's ``Content-Type`` if any."""

    path: Path
    size: int
    content_type: str | None = None


class PartFile:
    """Write a download to ``dest.part`` and rename it to ``dest`` only when complete.

    ``write`` enforces the size limit and the cancel event; on any failure the part file is removed,
    so a fetch never leaves half a source under the final name.
    """

    def __init__(self, dest: Path, *, limit: int, cancel: threading.Event | None = None):
        self.dest, self.limit, self.cancel = Path(dest), limit, cancel
        self.part = self.dest.with_suffix(".part")
        self.size = 0
        self._out: BinaryIO | None = None

    def check_total(self, total: int | None) -> None:
        """Refuse early when the server announces a size over the limit."""
        if total is not None and total > self.limit:
            raise SourceTooLarge(f"source is {total} bytes, over the limit of {self.limit} bytes")

    def write(self, chunk: bytes) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise SourceError("download cancelled")
        self.size += len(chunk)
        if self.size > self.limit:
            raise SourceTooLarge(f"source is over the limit of {self.limit} bytes (aborted while downloading)")
        self._out.write(chunk)

    def __enter__(self) -> "PartFile":
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(self.part, "wb")
        except OSError as exc:
            raise SourceError(f"source download failed: cannot write {self.dest.name} ({exc.strerror or exc})") from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._out.close()
            if exc_type is None:
                os.replace(self.part, self.dest)
                return
        except OSError as err:
            self.part.unlink(missing_ok=True)
            raise SourceError(f"source download failed: cannot write {self.dest.name} ({err.strerror or err})") from err
        self.part.unlink(missing_ok=True)
