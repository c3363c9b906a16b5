"""Parse the sizes and durations people write in YAML and forms ("6G", "24h", "1-00:00:00")."""

import re

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_MEMORY_FACTOR_MB = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_DURATION_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_DURATION_CLOCK = re.compile(r"^\s*(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory_mb(value) -> int:
    """Memory in MiB from an int (MiB) or a string such as "512M", "6G", "1.5T"."""
    if isinstance(value, bool):
        raise ValueError(f"expected a memory size such as 6G, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a non-negative memory size, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a memory size such as 6G, got {value!r}")
    match = _MEMORY.match(value)
    if not match:
        raise ValueError(f"expected a memory size such as 512M or 6G, got {value!r}")
    number, unit = match.groups()
    return int(float(number) * _MEMORY_FACTOR_MB[unit.upper()])


def parse_duration_s(value) -> int:
    """Seconds from an int (seconds), "90m", "24h", "7d", "HH:MM:SS" or "D-HH:MM:SS"."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 24h, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 24h, got {value!r}")
    match = _DURATION_UNIT.match(value)
    if match:
        return int(float(match.group(1)) * _SECONDS[match.group(2).lower()])
    match = _DURATION_CLOCK.match(value)
    if match:
        days, hours, minutes, seconds = match.groups()
        if seconds is None:  # "HH:MM"
            seconds = 0
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    raise ValueError(f"expected a duration such as 90m, 24h or 1-00:00:00, got {value!r}")


def format_memory(mb: int) -> str:
    if mb and mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb and mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


def format_duration(seconds: int) -> str:
    """Slurm's walltime spelling, D-HH:MM:SS."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def format_duration_human(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
