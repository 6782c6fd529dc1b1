"""Schemas: the pins are right, the derivation is right, and fetching is checked and cached.

The internet is stood in for by a local HTTP server (loopback, stopped by the fixture) that
serves the shared CRD files at their upstream paths; the shared files are byte-identical to
upstream, which the sha256 test holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelops.deploy import schemas
from modelops.deploy.crd import strict
from modelops.deploy.schemas import (
    PINNED,
    Pinned,
    SchemaSource,
    derive,
    load,
    schema_source,
)
from modelops.errors import SchemaError

ARGO = next(p for p in PINNED if p.kind == "Application")


@dataclass
class Upstream:
    """A local stand-in for raw.githubusercontent.com, and the paths it was asked for."""

    url: str
    root: Path
    requests: list[str] = field(default_factory=list)

    def file(self, pinned: Pinned) -> Path:
        return self.root / pinned.repository / pinned.tag / pinned.path


@pytest.fixture
def upstream(tmp_path: Path, shared_schemas: Path) -> Iterator[Upstream]:
    """Serve the shared CRD files at their upstream paths on 127.0.0.1 for one test."""
    served = Upstream(url="", root=tmp_path / "upstream")
    for pinned in PINNED:
        served.file(pinned).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_schemas / pinned.crd, served.file(pinned))

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served.root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield int(probe.getsockname()[1])


def _source(cache: Path, url: str | None) -> SchemaSource:
    """No schema folder: only the cache, then `url`."""
    return SchemaSource(folders=(), cache=cache, base_url=url)


@pytest.mark.parametrize("pinned", PINNED, ids=lambda p: p.kind)
def test_each_pinned_sha256_is_that_of_the_shared_upstream_file(pinned, shared_schemas) -> None:
    data = (shared_schemas / pinned.crd).read_bytes()
    assert hashlib.sha256(data).hexdigest() == pinned.sha256


@pytest.mark.parametrize("pinned", PINNED, ids=lambda p: p.kind)
def test_the_strict_schema_derived_in_code_equals_the_shared_one(pinned, shared_schemas) -> None:
    derived = derive(pinned, (shared_schemas / pinned.crd).read_bytes())
    expected = json.loads((shared_schemas / pinned.strict).read_text())
    assert derived == expected, f"derive() must reproduce {pinned.strict}"


def test_given_no_local_schema_when_loaded_then_it_is_downloaded_checked_and_cached(
    tmp_path: Path, upstream: Upstream, shared_schemas: Path
) -> None:
    cache = tmp_path / "cache"
    for pinned in PINNED:
        schema = load(pinned, _source(cache, upstream.url))
        assert schema == json.loads((shared_schemas / pinned.strict).read_text()), pinned.kind
        assert (cache / pinned.crd).read_bytes() == upstream.file(pinned).read_bytes()
        assert json.loads((cache / pinned.strict).read_text()) == schema
    assert sorted(upstream.requests) == sorted(
        f"/{p.repository}/{p.tag}/{p.path}" for p in PINNED
    ), "one request per pinned file, at its upstream path"


def test_given_a_cached_schema_when_loaded_again_then_nothing_is_downloaded(
    tmp_path: Path, upstream: Upstream
) -> None:
    cache = tmp_path / "cache"
    first = load(ARGO, _source(cache, upstream.url))
    assert load(ARGO, _source(cache, None)) == first, "downloads off: the cache answers"
    assert load(ARGO, _source(cache, upstream.url)) == first
    assert len(upstream.requests) == 1


def test_given_a_file_that_is_not_the_pinned_one_then_it_is_refused_and_nothing_is_cached(
    tmp_path: Path, upstream: Upstream
) -> None:
    upstream.file(ARGO).write_bytes(upstream.file(ARGO).read_bytes() + b"# altered\n")
    cache = tmp_path / "cache"
    with pytest.raises(SchemaError, match=r"refused http://127\.0\.0\.1") as refused:
        load(ARGO, _source(cache, upstream.url))
    assert f"not the pinned {ARGO.sha256}" in str(refused.value)
    assert "nothing was cached" in str(refused.value)
    assert not cache.exists() or not any(cache.rglob("*")), "the cache stays empty"


def test_given_a_cached_file_that_was_altered_then_it_is_downloaded_again(
    tmp_path: Path, upstream: Upstream
) -> None:
    cache = tmp_path / "cache"
    load(ARGO, _source(cache, upstream.url))
    (cache / ARGO.crd).write_bytes(b"altered")
    load(ARGO, _source(cache, upstream.url))
    assert len(upstream.requests) == 2
    assert hashlib.sha256((cache / ARGO.crd).read_bytes()).hexdigest() == ARGO.sha256


def test_given_an_unreachable_server_then_the_error_names_the_url(tmp_path: Path) -> None:
    with _closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(
            SchemaError, match=re.escape(f"could not download {url}/argoproj/argo-cd")
        ):
            load(ARGO, _source(tmp_path / "cache", url))


def test_given_downloads_off_and_no_schema_then_the_error_says_so(tmp_path: Path) -> None:
    source = SchemaSource(folders=(tmp_path,), cache=tmp_path / "cache", base_url=None)
    with pytest.raises(SchemaError, match="downloads are off"):
        load(ARGO, source)
    assert "set MODELOPS_SCHEMAS to a folder holding argo-cd/v3.5.1/strict/" in source.describe(
        ARGO
    )


def test_the_first_folder_holding_a_schema_wins(tmp_path: Path, shared_schemas: Path) -> None:
    mine = tmp_path / "mine"
    (mine / ARGO.strict).parent.mkdir(parents=True)
    (mine / ARGO.strict).write_text('{"title": "mine"}')
    source = SchemaSource(folders=(mine, shared_schemas), cache=tmp_path / "cache", base_url=None)
    assert load(ARGO, source) == {"title": "mine"}
    source = SchemaSource(folders=(tmp_path, shared_schemas), cache=tmp_path, base_url=None)
    assert load(ARGO, source) == json.loads((shared_schemas / ARGO.strict).read_text())


def test_the_source_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    for name in (
        "MODELOPS_SCHEMAS",
        "MODELOPS_SCHEMAS_CACHE",
        "MODELOPS_SCHEMAS_URL",
        "MODELOPS_REQUIRE_SCHEMAS",
        "GITHUB_ACTIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    source = schema_source(root)
    assert source.folders == (tmp_path / "shared" / "schemas",), "../shared/schemas beside it"
    assert source.cache == tmp_path / "xdg" / "modelops" / "schemas"
    assert source.base_url == schemas.DEFAULT_BASE_URL
    assert not source.required

    monkeypatch.setenv("MODELOPS_SCHEMAS", str(tmp_path / "set"))
    monkeypatch.setenv("MODELOPS_SCHEMAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELOPS_SCHEMAS_URL", "off")
    monkeypatch.setenv("CI", "true")
    assert not schema_source(root).required, "a CI machine that cannot reach GitHub skips"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert schema_source(root).required, "GitHub Actions reaches GitHub: a missing schema fails"
    monkeypatch.delenv("GITHUB_ACTIONS")
    monkeypatch.setenv("MODELOPS_REQUIRE_SCHEMAS", "true")
    source = schema_source(root)
    assert source.folders == (tmp_path / "set", tmp_path / "shared" / "schemas")
    assert source.cache == tmp_path / "cache"
    assert source.base_url is None
    assert source.required, "asked for: a missing schema fails validation"


def test_strict_closes_objects_that_list_properties_but_not_those_kept_open() -> None:
    # Given a schema whose `status` keeps unknown fields (as KServe's InferenceService's does),
    # when made strict, then `spec` refuses an unknown field and `status` does not.
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
            "status": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"b": {"type": "string"}},
            },
        },
    }
    closed = strict(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["spec"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["status"]
    assert "additionalProperties" not in strict(schema, close_root=False)
