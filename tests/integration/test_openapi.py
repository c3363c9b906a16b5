"""The files and jobs APIs against their OpenAPI specs: every route is described (and every
described path served), and schemathesis finds no 5xx and no answer that breaks the spec."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
from tornado import web

from ink_services.files import service as files_service
from ink_services.jobs import service as jobs_service
from tests.helpers.samples import root_file

REPO = Path(__file__).resolve().parents[2]
SPECS = {
    "ink-files": REPO / "ink_services" / "files" / "openapi.yaml",
    "ink-jobs": REPO / "ink_services" / "jobs" / "openapi.yaml",
}
EXAMPLES = {
    "path": "home/a/b.txt",
    "kind": "root",
    "job_id": "j20260101-0000abcd",
    "stream": "stdout",
    "share_id": "0123456789abcdef",
    "transfer_id": "0123456789abcdef",
}
# schemathesis's warnings that fail the run: all but validation_mismatch ("most generated data
# was refused"), which every operation naming a file would raise: a random string is not a path
# in one of the user's areas, and INK rightly answers 400 or 404 (the seeded examples and the
# links are what reach the 2xx answers, checked per operation below)
FAILING_WARNINGS = [
    "missing_auth",
    "missing_test_data",
    "base_url_mismatch",
    "missing_deserializer",
    "unused_openapi_auth",
    "unsupported_regex",
    "method_not_allowed",
    "unmatched_filter",
    "unresolvable_reference",
    "rate_limited",
    "dictionary_mismatch",
    "timeout_units",
    "constants_extraction",
    "low_valid_rate",
]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def api_routes(app) -> dict[re.Pattern, set[str]]:
    """The app's routes under api/v1/ (regexes of the part after it) and the methods each serves."""
    routes = {}
    for rule in app.wildcard_router.rules:
        pattern = rule.matcher.regex.pattern
        if "api/v1/" in pattern:
            handler = rule.target
            methods = {m for m in HTTP_METHODS if getattr(handler, m) is not getattr(web.RequestHandler, m)}
            routes[re.compile(pattern.split("api/v1/", 1)[1])] = methods
    return routes


def example_urls(spec: Path) -> dict[str, set[str]]:
    paths = yaml.safe_load(spec.read_text())["paths"]
    return {
        re.sub(r"\{(\w+)\}", lambda m: EXAMPLES[m.group(1)], p).lstrip("/"): set(ops) & set(HTTP_METHODS)
        for p, ops in paths.items()
    }


@pytest.mark.parametrize("service", sorted(SPECS))
def test_every_route_is_in_the_spec_and_back(service):
    if service == "ink-files":
        app = files_service.make_app(None, None, "/services/ink-files/", 1, 1)
    else:
        site = SimpleNamespace(default_allowance={}, credentials={})
        app = jobs_service.make_app(None, site, "/services/ink-jobs/", None, "python", None)
    routes = api_routes(app)
    urls = example_urls(SPECS[service])
    for route, methods in routes.items():
        if route.pattern.startswith("openapi"):
            continue
        described = [ops for url, ops in urls.items() if route.fullmatch(url)]
        assert described, f"route {route.pattern} is not in {SPECS[service].name}"
        assert set().union(*described) == methods, (route.pattern, sorted(methods), described)
    for url, ops in urls.items():
        served = [methods for route, methods in routes.items() if route.fullmatch(url)]
        assert served, f"{url} is described but not served"
        assert ops <= set().union(*served), f"{url}: {sorted(ops)} described, {served} served"


def seed(hub, token: str, tmp_path: Path) -> None:
    """What the specs' examples name, so that every operation can succeed at least once:
    files in carol's ``home/analysis`` (a ROOT file to preview, files to copy, move, chmod and
    delete, a notebook to run)."""
    files = f"{hub.url}/services/ink-files/api/v1/"
    headers = {"Authorization": f"token {token}"}
    root_file(tmp_path / "run.root")
    contents = {
        "run.root": (tmp_path / "run.root").read_bytes(),
        "notes.txt": b"notes\n",
        "to-move.txt": b"move me\n",
        "delete-me.txt": b"delete me\n",
        "fit.ipynb": b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    }
    for name, data in contents.items():
        r = requests.put(
            f"{files}files/home/analysis/{name}?overwrite=1", data=data, headers=headers, timeout=30
        )
        if r.status_code == 404:  # the folder first
            requests.post(f"{files}mkdir/home/analysis", headers=headers, timeout=30)
            r = requests.put(
                f"{files}files/home/analysis/{name}?overwrite=1", data=data, headers=headers, timeout=30
            )
        assert r.status_code == 201, r.text


def successes(spec: Path, base: str, har: Path) -> dict[str, set[int]]:
    """Every operation of the spec (``METHOD /path``) and the status codes schemathesis saw."""
    paths = yaml.safe_load(spec.read_text())["paths"]

    def segment(match) -> str:  # a file path spans folders; other parameters are one segment
        return "[^?]+" if match.group(1) == "path" else "[^/?]+"

    operations = {
        (
            method.upper(),
            re.compile(re.sub(r"\\{(\w+)\\}", segment, re.escape(path)) + r"(\?.*)?$"),
        ): f"{method.upper()} {path}"
        for path, ops in paths.items()
        for method in ops
        if method in HTTP_METHODS
    }
    seen = {name: set() for name in operations.values()}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        url = entry["request"]["url"][len(base) :]
        for (method, pattern), name in operations.items():
            if entry["request"]["method"] == method and pattern.match(url):
                seen[name].add(entry["response"]["status"])
                break
    return seen


def test_schemathesis_finds_nothing(make_hub, unix_users, tmp_path):
    def unlimited(site):
        site["api"] = {"rate_per_minute": 1_000_000, "burst": 100_000}
        site["default_allowance"]["max_batch_jobs"] = 1  # POST run/{path}: one notebook job at a time
        return site

    hub = make_hub({"type": "local"}, adjust=unlimited)
    token = hub.user_token("inkt_carol")
    seed(hub, token, tmp_path)
    config = tmp_path / "schemathesis.toml"
    config.write_text(f"[warnings]\nfail-on = {json.dumps(FAILING_WARNINGS)}\n")
    for service in sorted(SPECS):
        base = f"{hub.url}/services/{service}/api/v1"
        served = requests.get(f"{base}/openapi.yaml", timeout=10)
        assert served.status_code == 200 and yaml.safe_load(served.text) == yaml.safe_load(
            SPECS[service].read_text()
        )
        result = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "schemathesis"),
                "--config-file",
                str(config),
                "run",
                f"{base}/openapi.yaml",
                "--url",
                base,
                "-H",
                f"Authorization: token {token}",
                "--checks",
                CHECKS,
                "--max-examples",
                "25",
                "--generation-deterministic",
                "--report",
                "har",
                "--report-har-path",
                str(tmp_path / f"{service}.har"),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        answered = successes(SPECS[service], base, tmp_path / f"{service}.har")
        print(service, {op: sorted(codes) for op, codes in answered.items()})
        missing = sorted(op for op, codes in answered.items() if not any(200 <= c < 300 for c in codes))
        assert not missing, f"{service}: no 2xx for {missing}"
