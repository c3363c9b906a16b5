"""The site's storage areas (``files.areas`` in the site YAML): a name, a kind (POSIX folder or
XRootD URL) and where each user's area is."""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass

ROOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # an area's name: the first part of a path


@dataclass(frozen=True)
class Kind:
    """A kind of storage as the site YAML writes it: the key of its location in a mapping and
    what a location must start with."""

    name: str
    key: str  # {type: NAME, KEY: template}
    starts: tuple[str, ...]
    expected: str


# the kinds of storage INK serves; a new kind adds its entry here and its adapter in
# ink_services/files/kinds.py (docs/extending.md)
KINDS = {
    "posix": Kind("posix", "path", ("/", "{home}"), "an absolute folder (may use {username} and {home})"),
    "xrootd": Kind("xrootd", "url", ("root://", "roots://"), "a root:// URL"),
}


@dataclass
class Area:
    name: str
    kind: str  # a key of KINDS
    template: str  # a folder, or a root:// URL; {username} and {home} are filled in

    def location(self, user: pwd.struct_passwd) -> str:
        return self.template.format(username=user.pw_name, home=user.pw_dir)


def parse_areas(areas: dict) -> dict[str, Area]:
    """The site's ``files.areas``: ``name: /folder/{username}`` (POSIX) or
    ``name: {type: KIND, KEY: template}`` (e.g. ``{type: xrootd, url: root://host//path/{username}}``)."""
    parsed = {}
    for name, spec in areas.items():
        if not isinstance(name, str) or not ROOT_NAME.match(name):
            raise ValueError(f"areas: {name!r} is not an area name (lower-case letters, digits, - and _)")
        if isinstance(spec, str):
            kind, template = KINDS["posix"], spec
        elif isinstance(spec, dict) and spec.get("type") in KINDS:
            kind = KINDS[spec["type"]]
            template = spec.get(kind.key, "")
        else:
            kinds = ", ".join(f"{{type: {k.name}, {k.key}: ...}}" for k in KINDS.values())
            raise ValueError(f"areas.{name}: expected a folder or one of {kinds}")
        if not isinstance(template, str):
            raise ValueError(f"areas.{name}: expected text")
        if not template.startswith(kind.starts):
            raise ValueError(f"areas.{name}: expected {kind.expected}")
        try:
            template.format(username="u", home="/h")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"areas.{name}: only {{username}} and {{home}} may be filled in") from None
        parsed[name] = Area(name, kind.name, template)
    return parsed
