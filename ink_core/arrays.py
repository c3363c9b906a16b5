"""Job arrays as Slurm writes them: ``0-99``, ``1,5,7-9``, ``0-20:5``, each with an optional
``%N`` (at most N tasks at once). One parser for the jobs API, the CLI and the job's runner."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TASKS = 1000
MAX_INDEX = 1_000_000
PART = re.compile(r"^(\d{1,7})(?:-(\d{1,7})(?::(\d{1,7}))?)?$")
PLACEHOLDER = "{index}"


class ArrayError(ValueError):
    pass


@dataclass(frozen=True)
class ArraySpec:
    indices: tuple[int, ...]
    throttle: int  # 0: no limit of its own

    def __str__(self) -> str:
        """The normalized spec, consecutive indices as ranges (what sbatch --array gets)."""
        parts, start = [], None
        for i, index in enumerate(self.indices):
            if start is None:
                start = index
            if i + 1 == len(self.indices) or self.indices[i + 1] != index + 1:
                parts.append(str(start) if start == index else f"{start}-{index}")
                start = None
        return ",".join(parts) + (f"%{self.throttle}" if self.throttle else "")

    def bounded(self, at_once: int) -> ArraySpec:
        """The same tasks, at most ``at_once`` at a time."""
        return ArraySpec(self.indices, min(self.throttle or at_once, at_once))

    @property
    def at_once(self) -> int:
        """How many tasks may run at the same time."""
        return min(len(self.indices), self.throttle or len(self.indices))


def parse_array(text: str) -> ArraySpec:
    if not isinstance(text, str) or not text.strip():
        raise ArrayError("array: expected indices like 0-99, 1,5,7-9 or 0-20:5, optionally %N (N at once)")
    body, _, throttle_text = text.strip().partition("%")
    throttle = 0
    if throttle_text:
        if not throttle_text.isdigit() or int(throttle_text) < 1:
            raise ArrayError(f"array: %{throttle_text} is not a number of tasks at once (%1 or more)")
        throttle = int(throttle_text)
    indices = set()
    for part in body.split(","):
        match = PART.match(part.strip())
        if not match:
            raise ArrayError(f"array: {part.strip()!r} is not an index, a range A-B or A-B:STEP")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first or step < 1:
            raise ArrayError(f"array: {part.strip()!r} is an empty range")
        if last > MAX_INDEX:
            raise ArrayError(f"array: indices go up to {MAX_INDEX}")
        if (last - first) // step + 1 + len(indices) > MAX_TASKS:
            raise ArrayError(f"array: at most {MAX_TASKS} tasks in one array")
        indices.update(range(first, last + 1, step))
    return ArraySpec(tuple(sorted(indices)), throttle)


def at_once(text: str) -> int:
    """How many tasks a job may run at once: its array's (normalized text), 1 for one job."""
    return parse_array(text).at_once if text else 1


def with_index(command: list[str], index: int) -> list[str]:
    """The task's command: ``{index}`` in any argument becomes the task's index."""
    return [arg.replace(PLACEHOLDER, str(index)) for arg in command]
