"""Write a file only its owner can read, atomically: a temp file beside it (mode 600), then a
rename, so a reader sees the old content or the new one, never a part."""

from __future__ import annotations

import os
import tempfile


def write_private(path, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ink-")  # mkstemp creates mode 600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
