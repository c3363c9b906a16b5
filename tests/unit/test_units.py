import pytest

from ink_core.units import format_duration, parse_duration_s, parse_memory_mb


@pytest.mark.parametrize(
    "text, mb",
    [("512M", 512), ("6G", 6144), ("6GB", 6144), ("1.5G", 1536), ("1T", 1048576), (2048, 2048), ("100", 100)],
)
def test_memory(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize(
    "text, s",
    [
        ("90m", 5400),
        ("24h", 86400),
        ("7d", 604800),
        ("01:30:00", 5400),
        ("1-00:00:00", 86400),
        ("2:30", 9000),
        (60, 60),
    ],
)
def test_duration(text, s):
    assert parse_duration_s(text) == s


@pytest.mark.parametrize("bad", ["lots", "-1G", True, None, [1]])
def test_bad_values(bad):
    with pytest.raises(ValueError):
        parse_memory_mb(bad)
    with pytest.raises(ValueError):
        parse_duration_s(bad)


def test_slurm_time_format():
    assert format_duration(86400 + 1800) == "1-00:30:00"
    assert format_duration(3600) == "01:00:00"
