"""Each user's terminal preferences (font size, theme), kept on the server so they follow the
user from browser to browser. One small JSON file per user, replaced atomically."""

from __future__ import annotations

from ink_core.jsonstore import JsonStore

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


class PrefsStore(JsonStore):
    def _path(self, username: str):
        try:
            return self.user_path(username)
        except ValueError as e:
            raise PrefsError(str(e)) from None

    def get(self, username: str) -> dict:
        try:
            return {**DEFAULTS, **validate(self.read_json(self._path(username), {}))}
        except ValueError:
            return dict(DEFAULTS)

    def update(self, username: str, changes: dict) -> dict:
        prefs = {**self.get(username), **validate(changes)}
        self.write_json(self._path(username), prefs)
        return prefs
