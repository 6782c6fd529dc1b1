"""A local stand-in for the parts of GitHub's REST API that modelops calls (tests only).

GitHub cannot exist here. The server keeps issues, comments, refs and pull requests in memory,
pages issue lists two at a time with a `Link` header (to /repositories/1/..., as GitHub does),
records every request, and answers 401 to any token but TOKEN. `serve()` starts it on loopback
and stops it on exit.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN, PAGE = "good-token", 2


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class Fake:
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    refs: set[str] = field(default_factory=set)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""

    def add(self, title: str, body: str = "", labels: tuple[str, ...] = ("monitor",), **extra: Any):
        number = len(self.issues) + len(self.pulls) + 1
        self.issues[number] = {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "labels": [{"name": n} for n in labels],
            "html_url": f"https://github.test/octo/repo/issues/{number}",
            **extra,
        }
        return number

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.method != "GET"]

    def touched(self) -> set[int]:
        return {int(n) for _, path in self.writes() for n in re.findall(r"/issues/(\d+)", path)}


def _names(issue: dict[str, Any]) -> set[str]:
    return {label["name"] for label in issue["labels"]}


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def _serve(self) -> None:
        fake: Fake = self.server.fake
        parts = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake.requests.append(Seen(self.command, parts.path, query, headers, body))
        if headers.get("authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "Bad credentials"})
        else:
            self._answer(*self._route(fake, self.command, parts.path, query, body))

    def _route(self, fake: Fake, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        number = int(m.group(1)) if (m := re.search(r"/issues/(\d+)", path)) else 0
        if method == "GET" and path in ("/repos/octo/repo/issues", "/repositories/1/issues"):
            wanted, issues = set(query["labels"].split(",")), fake.issues.values()
            found = [i for i in issues if i["state"] == query["state"] and wanted <= _names(i)]
            page = int(query.get("page", "1"))
            link = None
            if len(found) > page * PAGE:
                after = urllib.parse.urlencode({**query, "page": page + 1})
                link = f'<{fake.url}/repositories/1/issues?{after}>; rel="next"'
            return 200, found[(page - 1) * PAGE : page * PAGE], link
        if method == "POST" and path == "/repos/octo/repo/issues":
            if not body.get("title"):
                errors = [{"resource": "Issue", "code": "missing_field", "field": "title"}]
                return 422, {"message": "Validation Failed", "errors": errors}, None
            return 201, fake.issues[fake.add(body["title"], body["body"], body["labels"])], None
        if method == "PATCH" and number in fake.issues and path.endswith(f"/issues/{number}"):
            fake.issues[number].update(body)
            return 200, fake.issues[number], None
        pulls = {pull["number"] for pull in fake.pulls}  # a PR takes comments as an issue does
        if method == "POST" and number in {*fake.issues, *pulls} and path.endswith("/comments"):
            fake.comments.setdefault(number, []).append(body["body"])
            return 201, {"id": 1, "body": body["body"]}, None
        if method == "POST" and path == "/repos/octo/repo/git/refs":
            if body["ref"] in fake.refs:
                return 422, {"message": "Reference already exists"}, None
            fake.refs.add(body["ref"])
            return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}, None
        if method == "GET" and path == "/repos/octo/repo/pulls":
            return 200, [p for p in fake.pulls if f"octo:{p['head']['ref']}" == query["head"]], None
        if method == "POST" and path == "/repos/octo/repo/pulls":
            number = len(fake.issues) + len(fake.pulls) + 1
            url = f"https://github.test/octo/repo/pull/{number}"
            fake.pulls.append({"number": number, "html_url": url, "head": {"ref": body["head"]}})
            return 201, fake.pulls[-1], None
        return 404, {"message": "Not Found"}, None

    def _answer(self, status: int, answer: Any, link: str | None = None) -> None:
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PATCH = _serve  # noqa: N815

    def log_message(self, *args: Any) -> None:
        return


@contextmanager
def serve() -> Iterator[Fake]:
    """The stand-in on 127.0.0.1 (a free port), shut down and joined on exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.fake = Fake(url=f"http://127.0.0.1:{httpd.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.fake  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
