"""The session history in the hub: a user's own records, and the admin statistics page.

  GET /hub/api/ink/users/NAME/history[?since=YYYY-MM-DD&until=YYYY-MM-DD]   a user's sessions
      (JSON; the read:servers scope on that user, as for the user's servers themselves)
  GET /hub/ink/history[?since=...&until=...]   the logged-in user's own sessions, as a page
  GET /hub/ink/statistics[?since=...&until=...&format=html|json|csv]   admins (the admin-ui scope)

Dates are UTC days; ``until`` is included. Without dates: the last 30 days.
"""

from __future__ import annotations

import csv
import datetime
import io

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from . import history

HISTORY_ROUTE = r"/api/ink/users/([^/]+)/history"
STATISTICS_ROUTE = r"/ink/statistics"
MY_HISTORY_ROUTE = r"/ink/history"
DEFAULT_DAYS = 30
MAX_DAYS = 3660


def date_range(handler) -> tuple[datetime.datetime, datetime.datetime]:
    """[since, until + 1 day) from the query, checked; a clear 400 otherwise."""
    today = history.utcnow().date()

    def day(name, default):
        text = handler.get_argument(name, "")
        if not text:
            return default
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            raise web.HTTPError(400, f"{name}: expected a date such as 2026-12-01") from None

    until = day("until", today)
    since = day("since", until - datetime.timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise web.HTTPError(400, "since: must not be after until")
    if (until - since).days > MAX_DAYS:
        raise web.HTTPError(400, f"the range may span at most {MAX_DAYS} days")
    start = datetime.datetime.combine(since, datetime.time())
    return start, datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time())


def jsonable(row: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime.datetime) else v for k, v in row.items()}


class HistoryHandler(APIHandler):
    """A user's sessions: what each asked for, used, waited and why it ended (newest first)."""

    @needs_scope("read:servers")
    async def get(self, user_name):
        since, until = date_range(self)
        rows = history.history(self.db, user_name, since, until, limit=10_000)
        self.finish({"user": user_name, "sessions": [jsonable(r) for r in rows]})


class MyHistoryHandler(BaseHandler):
    """A user's own sessions as a page: what each asked for and used, how long it waited and
    ran, and why it ended."""

    @web.authenticated
    async def get(self):
        since, until = date_range(self)
        rows = history.history(self.db, self.current_user.name, since, until, limit=1000)
        html = await self.render_template(
            "ink_history.html",
            sessions=rows,
            since=since.date(),
            until=(until - datetime.timedelta(days=1)).date(),
        )
        self.finish(html)


class StatisticsHandler(BaseHandler):
    """Admins: sessions per app per day, CPU-hours, queue waits, active users, memory asked
    against used per app and group, over a date range; as a page, JSON or CSV."""

    @web.authenticated
    @needs_scope("admin-ui")
    async def get(self):
        since, until = date_range(self)
        groups = {}  # a user's first experiment group names them when a session names none
        for group in self.db.query(orm.Group).order_by(orm.Group.name):
            if not group.name.startswith("ink-user-"):
                for member in group.users:
                    groups.setdefault(member.name, group.name)
        figures = history.statistics_of(self.db, since, until, groups)
        kind = self.get_argument("format", "html")
        if kind == "json":
            self.set_header("Content-Type", "application/json")
            self.finish(figures)
        elif kind == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            name = f"ink-sessions-{since.date()}-{(until - datetime.timedelta(days=1)).date()}.csv"
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(records_csv(history.history(self.db, None, since, until)))
        elif kind == "html":
            last_day = (until - datetime.timedelta(days=1)).date()
            most = max((row["sessions"] for row in figures["sessions_per_app_per_day"]), default=1)
            html = await self.render_template(
                "ink_statistics.html", figures=figures, since=since.date(), until=last_day, most=most
            )
            self.finish(html)
        else:
            raise web.HTTPError(400, "format: one of html, json, csv")


def records_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=history.RECORD_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(jsonable(row))
    return out.getvalue()
