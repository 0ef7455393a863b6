"""Reading an extract file: its lines as `(line number, parsed JSON)`, blank lines skipped."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from registrar.sis.records import LoadFailed, line_hash, parse_line


def open_extract(path: Path) -> IO[bytes]:
    """The file, open for reading; LoadFailed (one line) when it cannot be read."""
    if path.is_dir():
        raise LoadFailed(f"cannot read {path}: it is a directory")
    try:
        return path.open("rb")
    except OSError as exc:
        raise LoadFailed(f"cannot read {path}: {exc.strerror or exc}") from None


class ExtractReader:
    """Lines of an extract as `(line number, parsed JSON)`, skipping blank lines."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.bytes_read = 0
        # Where each line starts (index: line number - 1), kept by `lines()` when a list is set
        # here: 8 bytes a line, so that a few lines can be read again (`line`).
        self.offsets: array[int] | None = None

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        for number, raw in enumerate(self.handle, start=1):
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark, as some exporters write
            if raw.isspace() or not raw:
                continue
            yield number, parse_line(raw, number)

    def lines(self) -> Iterator[tuple[int, bytes, int]]:
        """`(line number, bytes without the line break, line_hash)` of each non-blank line, from
        the start of the file (a load that falls back to parsing every line reads it again)."""
        self.handle.seek(0)
        self.bytes_read = 0
        offsets = self.offsets
        if offsets is not None:
            del offsets[:]
        for number, raw in enumerate(self.handle, start=1):
            if offsets is not None:
                offsets.append(self.bytes_read)
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if raw.isspace() or not raw:
                continue
            raw = raw.rstrip(b"\r\n")
            yield number, raw, line_hash(raw)

    def line(self, number: int) -> bytes:
        """The bytes of line `number` (as `lines()` yields them) again, from the offset `lines()`
        kept; the handle is left wherever it ends up (`lines()` starts from the top)."""
        assert self.offsets is not None
        self.handle.seek(self.offsets[number - 1])
        raw = self.handle.readline()
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        return raw.rstrip(b"\r\n")
