"""The session banner's parts: what it adds to which responses, and the time it reads."""

import datetime

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from ink.session_banner import make_transform, time_left

TAG = b'<script src="/user/alice/ink/session-banner.js" defer></script>'
PAGE = b"<!doctype html><html><head><title>lab</title></head><body></body></html>"


def transformed(path, dest="document", method="GET", status=200, **headers):
    request = HTTPServerRequest(
        start_line=RequestStartLine(method, path, "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "localhost", "Sec-Fetch-Dest": dest, "Accept-Encoding": "br, gzip"}),
    )
    transform = make_transform("/user/alice/lab", "/user/alice/ink/session-banner.js")(request)
    answer = HTTPHeaders(
        {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(PAGE)), **headers}
    )
    _, out_headers, body = transform.transform_first_chunk(status, answer, PAGE, True)
    return request, out_headers, body


def test_the_landing_page_gets_the_script_in_its_head_with_its_length_right():
    request, headers, body = transformed("/user/alice/lab/tree/x.ipynb")
    assert body == PAGE.replace(b"<head>", b"<head>" + TAG)
    assert int(headers["Content-Length"]) == len(body)
    assert "Accept-Encoding" not in request.headers  # asked uncompressed


def test_nothing_else_is_touched():
    for case in (
        transformed("/user/alice/files/page.html"),  # a user's file
        transformed("/user/alice/lab", dest="iframe"),  # an app's inner frame
        transformed("/user/alice/lab", dest="empty"),  # a script's request
        transformed("/user/alice/lab", method="POST"),
        transformed("/user/alice/lab", status=404),
        transformed("/user/alice/lab", **{"Content-Disposition": "attachment"}),
        transformed("/user/alice/lab", **{"Content-Encoding": "br"}),
        transformed("/user/alice/lab", **{"Content-Type": "application/json"}),
    ):
        assert case[2] == PAGE


def test_time_left_from_the_hubs_model():
    now = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
    started = (now - datetime.timedelta(minutes=50)).isoformat().replace("+00:00", "Z")
    server = {"started": started, "user_options": {"walltime": "1h"}}
    assert time_left(server, now.timestamp()) == 600
    assert time_left({**server, "user_options": {"walltime": "130m"}}, now.timestamp()) == 80 * 60
    assert time_left({**server, "user_options": {"walltime": "soon"}}, now.timestamp()) is None
    assert time_left({"user_options": {"walltime": "1h"}}, now.timestamp()) is None
