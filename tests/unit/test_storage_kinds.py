"""Each kind of storage the site YAML may name has its adapter, and each adapter a worker."""

import importlib.util

import pytest

from ink_core.areas import KINDS, parse_areas
from ink_services.files.kinds import ADAPTERS


def test_every_kind_has_an_adapter_with_a_worker():
    assert set(ADAPTERS) == set(KINDS)
    for kind, adapter in ADAPTERS.items():
        assert importlib.util.find_spec(adapter.worker_module), kind


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "s3", "url": "s3://bucket"}, "{type: posix, path: ...}, {type: xrootd, url: ...}"),
        ({"type": "xrootd", "url": "/not/a/url"}, "a root:// URL"),
        ("relative/folder", "an absolute folder"),
        ({"type": "posix", "path": "/data/{user}"}, "only {username} and {home}"),
    ],
)
def test_an_area_of_no_kind_or_a_wrong_location_says_what_is_expected(spec, message):
    with pytest.raises(ValueError, match="areas.data") as e:
        parse_areas({"data": spec})
    assert message in str(e.value)


def test_the_kinds_parse():
    areas = parse_areas({"home": "{home}", "eos": {"type": "xrootd", "url": "root://eos//eos/{username}"}})
    assert {n: a.kind for n, a in areas.items()} == {"home": "posix", "eos": "xrootd"}
