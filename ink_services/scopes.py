"""INK's custom scopes, and the check every INK API makes before it acts.

Users get them through the hub's ``user`` role, so their tokens carry them unless the token was
made with fewer; a script's token can be limited to, say, reading files.
"""

import logging

from tornado import web

from ink_core.names import USERNAME
from ink_spawner.accounts import SystemAccountRefused, check_not_system

log = logging.getLogger("ink.api")


def has_scope(user_model: dict, scope: str) -> bool:
    """True when the caller's token holds ``scope`` (unfiltered, or filtered to the caller)."""
    mine = f"{scope}!user={user_model.get('name')}"
    return any(s in (scope, mine) for s in user_model.get("scopes") or [])


def require_scope(handler, scope: str) -> None:
    if not has_scope(handler.current_user, scope):
        raise web.HTTPError(403, f"this token lacks the scope {scope}")


def acting_user(handler) -> str:
    """The caller, or, for a hub admin's token with admin:users, the user named in ?user=."""
    me = handler.current_user["name"]
    other = handler.get_argument("user", me)
    if other != me:
        if "admin:users" not in (handler.current_user.get("scopes") or []):
            raise web.HTTPError(403, "acting for another user needs the hub's admin:users scope")
        if not USERNAME.match(other):
            raise web.HTTPError(400, "user: not a valid user name")
        log.info("%s acts for %s (%s %s)", me, other, handler.request.method, handler.request.path)
    try:
        check_not_system(other, f"serve {handler.request.path} for {me}")
    except SystemAccountRefused as e:
        raise web.HTTPError(403, str(e)) from None
    return other
