"""The site's storage areas (``files.areas`` in the site YAML): a name, a kind (POSIX folder or
XRootD URL) and where each user's area is."""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass

ROOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # an area's name: the first part of a path


@dataclass
class Area:
    name: str
    kind: str  # posix | xrootd
    template: str  # a folder, or a root:// URL; {username} and {home} are filled in

    def location(self, user: pwd.struct_passwd) -> str:
        return self.template.format(username=user.pw_name, home=user.pw_dir)


def parse_areas(areas: dict) -> dict[str, Area]:
    """The site's ``files.areas``: ``name: /folder/{username}`` (POSIX) or
    ``name: {type: xrootd, url: root://host//path/{username}}``."""
    parsed = {}
    for name, spec in areas.items():
        if not isinstance(name, str) or not ROOT_NAME.match(name):
            raise ValueError(f"areas: {name!r} is not an area name (lower-case letters, digits, - and _)")
        if isinstance(spec, str):
            kind, template = "posix", spec
        elif isinstance(spec, dict) and spec.get("type") in ("posix", "xrootd"):
            kind = spec["type"]
            template = spec.get("url" if kind == "xrootd" else "path", "")
        else:
            raise ValueError(f"areas.{name}: expected a folder or {{type: xrootd, url: root://...}}")
        if not isinstance(template, str):
            raise ValueError(f"areas.{name}: expected text")
        if kind == "posix" and not template.startswith(("/", "{home}")):
            raise ValueError(f"areas.{name}: expected an absolute folder (may use {{username}} and {{home}})")
        if kind == "xrootd" and not template.startswith(("root://", "roots://")):
            raise ValueError(f"areas.{name}: expected a root:// URL")
        try:
            template.format(username="u", home="/h")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"areas.{name}: only {{username}} and {{home}} may be filled in") from None
        parsed[name] = Area(name, kind, template)
    return parsed
