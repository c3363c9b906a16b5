"""Each user's terminal preferences (font size, theme), kept on the server so they follow the
user from browser to browser. One small record per user (a file, or a row of the hub's
database when the site has one)."""

from __future__ import annotations

from ink_core.jsonstore import RecordStore, check_key
from ink_core.names import USERNAME

THEMES = ("dark", "light", "solarized")
DEFAULTS = {"font_size": 14, "theme": "dark"}
FONT_SIZES = range(8, 33)


class PrefsError(ValueError):
    pass


def validate(body) -> dict:
    """The preferences a user sent, checked field by field; unknown fields are refused."""
    if not isinstance(body, dict):
        raise PrefsError("expected a JSON object")
    unknown = sorted(set(body) - set(DEFAULTS))
    if unknown:
        raise PrefsError(f"unknown field {unknown[0]!r}")
    prefs = {}
    if "font_size" in body:
        size = body["font_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size not in FONT_SIZES:
            raise PrefsError(f"font_size: expected a whole number from {FONT_SIZES[0]} to {FONT_SIZES[-1]}")
        prefs["font_size"] = size
    if "theme" in body:
        if body["theme"] not in THEMES:
            raise PrefsError(f"theme: expected one of {', '.join(THEMES)}")
        prefs["theme"] = body["theme"]
    return prefs


class PrefsStore(RecordStore):
    def _key(self, username: str) -> str:
        if not isinstance(username, str) or not USERNAME.match(username):
            raise PrefsError(f"not a valid user name: {username!r}")
        return check_key(username)

    def get(self, username: str) -> dict:
        try:
            return {**DEFAULTS, **validate(self.records.get(self._key(username)) or {})}
        except ValueError:
            return dict(DEFAULTS)

    def update(self, username: str, changes: dict) -> dict:
        prefs = {**self.get(username), **validate(changes)}
        self.records.put(self._key(username), prefs)
        return prefs
