"""Renew every stored ticket before it expires; back off while the KDC is unreachable."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Gauge

from ink_spawner.kerberos import tickets
from ink_spawner.kerberos.store import TicketStore

log = logging.getLogger("ink.credentials")

TICKETS_HELD = Gauge("ink_credentials_tickets_held", "Kerberos tickets INK holds")
RENEWALS = Counter("ink_credentials_renewals", "Ticket renewals", ["result"])
SECONDS_TO_EXPIRY = Gauge("ink_credentials_min_seconds_to_expiry", "Seconds until the soonest ticket expires")
NEEDS_LOGIN = Gauge("ink_credentials_tickets_needing_login", "Tickets past their renewable limit")


class Renewer:
    def __init__(
        self,
        store: TicketStore,
        fraction: float = 0.5,
        retry_base: float = 5,
        retry_max: float = 300,
        concurrency: int = 16,
    ):
        self.store = store
        self.concurrency = concurrency
        self.fraction = fraction
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._next_try: dict[str, float] = {}

    def due(self, state: dict, now: float) -> bool:
        start, end = state.get("starttime", 0), state.get("endtime", 0)
        return now >= start + self.fraction * (end - start)

    async def renew_user(self, username: str) -> dict:
        """Renew one ticket now (also the 'renew now' button). Returns the new state."""
        path = self.store.ccache_path(username)
        try:
            times = await asyncio.to_thread(tickets.renew, path)
        except tickets.TicketError as e:
            RENEWALS.labels("failed").inc()
            state = self.store.state(username)
            failures = state.get("failures", 0) + 1
            # the KDC answered no and the ticket can no longer be used or renewed: ask for a login
            now = time.time()
            past_limit = now >= min(state.get("endtime", 0), state.get("renew_till", 0) - 5)
            status = "expired" if past_limit and not e.unreachable else "renew-failed"
            self._next_try[username] = time.time() + min(
                self.retry_base * 2 ** (failures - 1), self.retry_max
            )
            log.warning("renewal for %s failed (%s), attempt %d", username, e, failures)
            return self.store.set_state(username, state=status, error=str(e), failures=failures)
        RENEWALS.labels("ok").inc()
        self._next_try.pop(username, None)
        state = self.store.state(username)
        return self.store.set_state(
            username,
            state="ok",
            error="",
            failures=0,
            renewals=state.get("renewals", 0) + 1,
            **times.to_dict(),
        )

    async def cycle(self) -> None:
        now = time.time()
        users = self.store.users()
        states, due = {}, []
        for username in users:
            state = self.store.state(username)
            if state.get("state") == "expired" or now >= state.get("renew_till", 0):
                if state.get("state") != "expired":
                    state = self.store.set_state(
                        username, state="expired", error="the renewable lifetime has ended"
                    )
            elif now >= self._next_try.get(username, 0) and self.due(state, now):
                due.append(username)
            states[username] = state
        # renew what is due, a bounded number at a time (the KDC is shared with everyone)
        limit = asyncio.Semaphore(self.concurrency)

        async def renew(username):
            async with limit:
                states[username] = await self.renew_user(username)

        await asyncio.gather(*(renew(u) for u in due))
        valid = [s.get("endtime", 0) - now for s in states.values() if s.get("state") != "expired"]
        TICKETS_HELD.set(len(users))
        NEEDS_LOGIN.set(sum(1 for s in states.values() if s.get("state") == "expired"))
        SECONDS_TO_EXPIRY.set(min(valid) if valid else 0)

    async def run(self, interval: float = 5) -> None:
        while True:
            try:
                await self.cycle()
            except Exception:  # the loop must survive anything one ticket does
                log.exception("renewal cycle failed")
            await asyncio.sleep(interval)
