"""WebDAV's XML: request bodies parsed (defusedxml: no entities, no external references),
answers written as text piece by piece, so a listing of any size streams."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import time
from xml.etree.ElementTree import Element, tostring
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree

from ink_core.errors import Refused

DAV = "DAV:"
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
LIVE = (
    "resourcetype",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "creationdate",
    "supportedlock",
    "lockdiscovery",
)
SUPPORTED_LOCK = (
    "<D:supportedlock>"
    + "".join(
        f"<D:lockentry><D:lockscope><D:{s}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
        for s in ("exclusive", "shared")
    )
    + "</D:supportedlock>"
)
STATUS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    423: "Locked",
    424: "Failed Dependency",
    507: "Insufficient Storage",
}


class BadXml(Refused):
    """The request's XML body is not what the method takes (400)."""

    def __init__(self, message: str):
        super().__init__(400, message)


def parse(body: bytes) -> Element | None:
    if not body or not body.strip():
        return None
    try:
        return ElementTree.fromstring(body)
    except Exception as e:  # expat's errors, and defusedxml's refusals of entities and DTDs
        raise BadXml(f"the XML body is not well formed ({e.__class__.__name__})") from None


def split_tag(tag: str) -> tuple[str, str]:
    """``{ns}name`` -> (ns, name); a tag in no namespace -> ("", name)."""
    if tag.startswith("{"):
        ns, name = tag[1:].split("}", 1)
        return ns, name
    return "", tag


def propfind_request(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """("allprop" | "propname" | "prop", names asked); an empty body is allprop."""
    root = parse(body)
    if root is None:
        return "allprop", []
    if root.tag != f"{{{DAV}}}propfind":
        raise BadXml("expected a DAV:propfind body")
    for child in root:
        if child.tag == f"{{{DAV}}}allprop":
            return "allprop", []
        if child.tag == f"{{{DAV}}}propname":
            return "propname", []
        if child.tag == f"{{{DAV}}}prop":
            return "prop", [split_tag(p.tag) for p in child]
    raise BadXml("a propfind names prop, allprop or propname")


def proppatch_request(body: bytes) -> list[tuple[str, str, str, str | None]]:
    """[("set" | "remove", ns, name, the property's XML or None)] in the body's order."""
    root = parse(body)
    if root is None or root.tag != f"{{{DAV}}}propertyupdate":
        raise BadXml("expected a DAV:propertyupdate body")
    changes = []
    for action in root:
        op = {f"{{{DAV}}}set": "set", f"{{{DAV}}}remove": "remove"}.get(action.tag)
        if op is None:
            raise BadXml("a propertyupdate holds set and remove")
        for prop in action.findall(f"{{{DAV}}}prop"):
            for element in prop:
                ns, name = split_tag(element.tag)
                element.tail = None
                changes.append((op, ns, name, tostring(element, encoding="unicode") if op == "set" else None))
    if not changes:
        raise BadXml("the propertyupdate changes nothing")
    return changes


def lockinfo_request(body: bytes) -> tuple[bool, str] | None:
    """(exclusive, the owner's XML) of a new lock; None for a refresh (no body)."""
    root = parse(body)
    if root is None:
        return None
    if root.tag != f"{{{DAV}}}lockinfo":
        raise BadXml("expected a DAV:lockinfo body")
    scope = root.find(f"{{{DAV}}}lockscope")
    kind = root.find(f"{{{DAV}}}locktype")
    if scope is None or kind is None or kind.find(f"{{{DAV}}}write") is None:
        raise BadXml("a lock names its lockscope and the write locktype")
    exclusive = scope.find(f"{{{DAV}}}exclusive") is not None
    if not exclusive and scope.find(f"{{{DAV}}}shared") is None:
        raise BadXml("lockscope: exclusive or shared")
    owner = root.find(f"{{{DAV}}}owner")
    owner_xml = ""
    if owner is not None:
        owner.tail = None
        owner_xml = tostring(owner, encoding="unicode")
    return exclusive, owner_xml


# -- custom ("dead") properties, stored by the worker under a key ------------------------------
def prop_key(ns: str, name: str) -> str:
    return hashlib.sha256(f"{ns}\n{name}".encode()).hexdigest()[:40]


def stored_prop(ns: str, name: str, xml: str) -> str:
    return json.dumps({"ns": ns, "name": name, "xml": xml})


def dead_props(stored: dict) -> dict[tuple[str, str], str]:
    props = {}
    for value in (stored or {}).values():
        try:
            item = json.loads(value)
            props[(item["ns"], item["name"])] = item["xml"]
        except (ValueError, KeyError, TypeError):
            continue  # not ours
    return props


# -- answers ------------------------------------------------------------------------------------
def empty_element(ns: str, name: str) -> str:
    if ns == DAV:
        return f"<D:{name}/>"
    return f"<X:{name} xmlns:X={quoteattr(ns)}/>" if ns else f'<{name} xmlns=""/>'


def http_date(t: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def etag(entry: dict) -> str:
    return f'"{entry["size"]:x}-{int(entry["mtime"] * 1_000_000):x}"'


def live_props(entry: dict, lockdiscovery: str) -> dict[str, str]:
    """The live properties of an entry (files: length and type too), as XML."""
    is_dir = entry["type"] == "dir"
    props = {
        "resourcetype": "<D:resourcetype><D:collection/></D:resourcetype>" if is_dir else "<D:resourcetype/>",
        "displayname": f"<D:displayname>{escape(entry['name'])}</D:displayname>",
        "getetag": f"<D:getetag>{escape(etag(entry))}</D:getetag>",
        "getlastmodified": f"<D:getlastmodified>{http_date(entry['mtime'])}</D:getlastmodified>",
        "creationdate": "<D:creationdate>"
        + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["mtime"]))
        + "</D:creationdate>",
        "supportedlock": SUPPORTED_LOCK,
        "lockdiscovery": lockdiscovery,
    }
    if not is_dir:
        kind = mimetypes.guess_type(entry["name"])[0] or "application/octet-stream"
        props["getcontentlength"] = f"<D:getcontentlength>{entry['size']}</D:getcontentlength>"
        props["getcontenttype"] = f"<D:getcontenttype>{escape(kind)}</D:getcontenttype>"
    return props


def lock_xml(lock, href_of_root: str) -> str:
    scope = "exclusive" if lock.exclusive else "shared"
    return (
        "<D:activelock><D:locktype><D:write/></D:locktype>"
        f"<D:lockscope><D:{scope}/></D:lockscope><D:depth>{lock.depth}</D:depth>"
        f"{lock.owner_xml}<D:timeout>Second-{lock.seconds_left()}</D:timeout>"
        f"<D:locktoken><D:href>{escape(lock.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{escape(href_of_root)}</D:href></D:lockroot></D:activelock>"
    )


def lockdiscovery(locks) -> str:
    return (
        "<D:lockdiscovery>" + "".join(lock_xml(lock, lock.root_href) for lock in locks) + "</D:lockdiscovery>"
    )


def propstat(props_xml: list[str], status: int) -> str:
    return (
        f"<D:propstat><D:prop>{''.join(props_xml)}</D:prop>"
        f"<D:status>HTTP/1.1 {status} {STATUS.get(status, '')}</D:status></D:propstat>"
    )


def response(href: str, propstats: list[str]) -> str:
    return f"<D:response><D:href>{escape(href)}</D:href>{''.join(propstats)}</D:response>"


def status_response(href: str, status: int, message: str = "") -> str:
    description = f"<D:responsedescription>{escape(message)}</D:responsedescription>" if message else ""
    return (
        f"<D:response><D:href>{escape(href)}</D:href>"
        f"<D:status>HTTP/1.1 {status} {STATUS.get(status, '')}</D:status>{description}</D:response>"
    )


def propfind_entry(href: str, entry: dict, mode: str, names, lockdiscovery_xml: str) -> str:
    """One entry's answer to PROPFIND (allprop, propname, or the properties named)."""
    live = live_props(entry, lockdiscovery_xml)
    dead = dead_props(entry.get("props"))
    if mode == "propname":
        names_xml = [empty_element(DAV, n) for n in live] + [empty_element(ns, n) for ns, n in dead]
        return response(href, [propstat(names_xml, 200)])
    if mode == "allprop":
        return response(href, [propstat(list(live.values()) + list(dead.values()), 200)])
    found, missing = [], []
    for ns, name in names:
        if ns == DAV and name in live:
            found.append(live[name])
        elif (ns, name) in dead:
            found.append(dead[(ns, name)])
        else:
            missing.append(empty_element(ns, name))
    stats = [propstat(found, 200)] if found else []
    if missing:
        stats.append(propstat(missing, 404))
    return response(href, stats)


def multistatus(body: str) -> str:
    return f'{HEAD}<D:multistatus xmlns:D="DAV:">{body}</D:multistatus>'


def error(condition: str) -> str:
    return f'{HEAD}<D:error xmlns:D="DAV:"><D:{condition}/></D:error>'


def lock_answer(lock) -> str:
    return f'{HEAD}<D:prop xmlns:D="DAV:"><D:lockdiscovery>{lock_xml(lock, lock.root_href)}</D:lockdiscovery></D:prop>'
