"""Credentials service logic: store permissions, renewal states and backoff, status text."""

import asyncio
import time

import pytest

from ink_services.credentials import renewer as renewer_module
from ink_services.credentials.renewer import Renewer
from ink_services.credentials.service import status_of
from ink_spawner.kerberos.store import TicketStore
from ink_spawner.kerberos.tickets import TicketError, TicketTimes


@pytest.fixture
def store(tmp_path):
    s = TicketStore(tmp_path / "store")
    now = int(time.time())
    s.ccache_path("alice").write_bytes(b"ticket")
    s.record_login(
        "alice",
        {"principal": "alice@X", "starttime": now - 50, "endtime": now + 50, "renew_till": now + 3600},
    )
    return s


def test_store_is_private_and_refuses_bad_names(store, tmp_path):
    assert (tmp_path / "store").stat().st_mode & 0o777 == 0o700
    store.set_state("alice", renewals=3)
    assert (tmp_path / "store" / "alice.json").stat().st_mode & 0o777 == 0o600
    for bad in ("../etc/passwd", "Alice", "a/b", ""):
        with pytest.raises(ValueError):
            store.ccache_path(bad)


def test_due_at_the_configured_fraction(store):
    state = store.state("alice")
    assert Renewer(store, fraction=0.5).due(state, time.time())
    assert not Renewer(store, fraction=0.9).due(state, time.time())


def test_unreachable_kdc_backs_off_and_keeps_the_ticket(store, monkeypatch):
    def unreachable(path):
        raise TicketError("the Kerberos server (KDC) cannot be reached", unreachable=True)

    monkeypatch.setattr(renewer_module.tickets, "renew", unreachable)
    r = Renewer(store, fraction=0.1, retry_base=10)
    asyncio.run(r.cycle())
    state = store.state("alice")
    assert state["state"] == "renew-failed" and state["failures"] == 1
    assert store.read("alice") == b"ticket"
    asyncio.run(r.cycle())  # within the backoff: not tried again
    assert store.state("alice")["failures"] == 1
    r._next_try["alice"] = 0
    asyncio.run(r.cycle())
    assert store.state("alice")["failures"] == 2


def test_success_moves_expiry_and_counts(store, monkeypatch):
    later = int(time.time()) + 500
    monkeypatch.setattr(
        renewer_module.tickets,
        "renew",
        lambda path: TicketTimes("alice@X", int(time.time()), later, later + 1000),
    )
    asyncio.run(Renewer(store, fraction=0.1).cycle())
    state = store.state("alice")
    assert (state["state"], state["endtime"], state["renewals"]) == ("ok", later, 1)


def test_past_the_renewable_limit_asks_for_login(store):
    store.set_state("alice", renew_till=int(time.time()) - 1)
    asyncio.run(Renewer(store).cycle())
    status = status_of(store, "alice")
    assert status["state"] == "expired" and "log in again" in status["message"]


def test_status_without_ticket_and_near_limit(store, tmp_path):
    assert status_of(store, "bob") == {
        "held": False,
        "state": "none",
        "message": "INK holds no Kerberos ticket for you.",
    }
    status = status_of(store, "alice", warn_before=7200)
    assert status["near_limit"] and "renewable limit soon" in status["message"]
    assert "ticket" not in str(status.get("principal"))
