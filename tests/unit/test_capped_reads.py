"""What INK reads of a user's files is capped: a 20 GB sparse log with no newline costs nothing."""

import asyncio
import os
import time

from ink_spawner.backends.base import last_lines
from ink_spawner.backends.local import LocalBackend


def test_a_huge_log_without_newlines_is_read_only_at_its_end(tmp_path):
    log = tmp_path / "huge.log"
    with open(log, "wb") as f:
        f.truncate(20 * 1024**3)  # sparse: 20 GB of NUL bytes, no newline
        f.seek(0, os.SEEK_END)
        f.write(b"\nlast words\n")
    backend = LocalBackend(submit_as="self")
    started = time.monotonic()
    tail = asyncio.run(backend.log_tail(os.environ.get("USER", "root"), str(log), 20, max_bytes=4096))
    assert time.monotonic() - started < 5
    assert tail.endswith("last words\n") and len(tail.encode()) <= 4096


def test_last_lines_drops_a_cut_first_line():
    assert last_lines("tial line\na\nb\n", 5, cut=True) == "a\nb\n"
    assert last_lines("whole\na\nb\n", 2, cut=False) == "a\nb\n"
    assert last_lines("only a part of one long line", 3, cut=True) == "only a part of one long line"
    assert last_lines("a\nb\n", 0, cut=False) == ""
