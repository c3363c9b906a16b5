"""The dashboard's sample store: one user cannot evict another's charts, numbers are clamped,
one series takes at most one sample per interval."""

import time

import pytest
from tornado import web

from ink_services.dashboard.service import SampleStore

GOOD = {"cpu_percent": 50, "rss_bytes": 2**30, "read_bytes": 0, "write_bytes": 0, "processes": 3}


def test_a_users_many_series_evict_only_his_own():
    store = SampleStore(max_series=10, per_user=3, min_gap=0)
    store.add("alice", "", SampleStore.validate(GOOD))
    for number in range(50):  # bob invents server names
        store.add("bob", f"s{number}", SampleStore.validate(GOOD))
    assert list(store.of_user("alice")) == [""]
    assert sorted(store.of_user("bob")) == ["s47", "s48", "s49"]


@pytest.mark.parametrize(
    "field, value",
    [("rss_bytes", float("inf")), ("rss_bytes", float("nan")), ("cpu_percent", -1), ("processes", True)],
)
def test_numbers_are_finite_and_bounded(field, value):
    with pytest.raises(web.HTTPError) as err:
        SampleStore.validate({**GOOD, field: value})
    assert err.value.status_code == 400 and field in err.value.log_message


def test_the_time_is_the_services_and_the_rate_is_bounded():
    sample = SampleStore.validate({**GOOD, "t": 1e12})
    assert abs(sample["t"] - time.time()) < 5
    store = SampleStore(min_gap=0.5)
    store.add("alice", "", sample)
    with pytest.raises(web.HTTPError) as err:
        store.add("alice", "", sample)
    assert err.value.status_code == 429
    store.add("alice", "other", sample)  # another series has its own pace
