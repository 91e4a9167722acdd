"""Reading a user's text file (fixtures, --pricing, --emulator-config) the one careful way.

Only a regular file is read (a FIFO or a device such as /dev/zero would block or never end), as
UTF-8 with an optional byte-order mark (editors on Windows add one). What went wrong comes back as
an `UnreadableText` whose `reason` is a short phrase each caller puts into its own one-line error,
with its own error type and advice.
"""

from __future__ import annotations

from pathlib import Path


class UnreadableText(ValueError):
    """Why a text file cannot be read: `reason` completes "<path>: ..." (e.g. "file not found")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_text_file(path: Path) -> str:
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise UnreadableText("not a regular file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableText("file not found") from None
    except IsADirectoryError:
        raise UnreadableText("is a folder, not a file") from None
    except OSError as exc:
        raise UnreadableText(f"cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableText(f"cannot read it as UTF-8 text (bad byte at offset {exc.start})") from None
