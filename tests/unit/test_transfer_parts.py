"""The pieces of background transfers and WebDAV listings that need no service: which URLs a
pull may fetch, and a folder scanned page by page."""

import pytest

from ink_core.errors import Refused
from ink_services.files.davlocks import parse_if, submitted_tokens, timeout_of
from ink_services.files.scans import Scans
from ink_services.files.transfers import check_pull_url


@pytest.mark.parametrize(
    "url, status",
    [
        ("http://example.org/x", 400),  # plain http
        ("ftp://example.org/x", 400),
        ("file:///etc/passwd", 400),
        ("https://user:pw@example.org/x", 400),  # credentials in the URL
        ("https://exa mple.org/x", 400),
        ("https://127.0.0.1/x", 403),  # loopback
        ("https://10.0.0.8/x", 403),  # private
        ("https://169.254.169.254/latest/meta-data", 403),  # link-local (cloud metadata)
        ("https://[::1]/x", 403),
        ("https://[fd00::1]/x", 403),
        ("root://192.168.1.5//store/x.root", 403),
    ],
)
def test_a_pull_fetches_only_public_urls(url, status):
    with pytest.raises(Refused) as refused:
        check_pull_url(url, [])
    assert refused.value.status == status


def test_the_site_may_name_hosts_inside_its_network():
    assert check_pull_url("root://10.0.0.8//store/x.root", ["10.0.0.8"]) == "root://10.0.0.8//store/x.root"
    assert check_pull_url("https://8.8.8.8/x", []) == "https://8.8.8.8/x"  # a public address


def test_a_scan_pages_through_and_forgets_abandoned_scans():
    scans = Scans(keep=2)
    page = scans.page(lambda: iter(range(5)), "", 2)
    assert page["entries"] == [0, 1] and page["cursor"]
    rest = scans.page(None, page["cursor"], 10)
    assert rest == {"entries": [2, 3, 4], "cursor": ""}
    with pytest.raises(Refused) as gone:  # a finished scan's cursor is spent
        scans.page(None, page["cursor"], 2)
    assert gone.value.status == 410
    closed = []

    def folder(n):
        try:
            yield from range(n)
        finally:
            closed.append(n)

    cursors = [scans.page(lambda n=n: folder(10 + n), "", 1)["cursor"] for n in range(3)]
    assert closed == [10]  # the oldest of three open scans was closed (its folder too)
    assert scans.page(None, cursors[2], 100)["entries"] == list(range(1, 12))


def test_if_headers_and_timeouts():
    lists = parse_if('<http://h/dav/a> (<opaquelocktoken:1> ["e1"]) (Not <DAV:no-lock>)')
    assert [(tag, [(c.negated, c.token, c.etag) for c in conds]) for tag, conds in lists] == [
        ("http://h/dav/a", [(False, "opaquelocktoken:1", None), (False, None, '"e1"')]),
        ("http://h/dav/a", [(True, "DAV:no-lock", None)]),
    ]
    assert submitted_tokens(lists) == {"opaquelocktoken:1"}
    for bad in ("", "()", "(<a>", "<a> b", "(x)"):
        with pytest.raises(ValueError):
            parse_if(bad)
    assert timeout_of("Second-60") == 60
    assert timeout_of("Infinite, Second-5") == 7 * 24 * 3600
    assert timeout_of("nonsense") == 3600
