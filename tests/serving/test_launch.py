"""Where the tests, the smoke request and `make serve` reach the server they started."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelops_serving.launch import Server


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("127.0.0.2", "http://127.0.0.2:9000"),
        ("0.0.0.0", "http://127.0.0.1:9000"),
        ("::", "http://127.0.0.1:9000"),
        ("::1", "http://[::1]:9000"),
    ],
)
def test_a_client_reaches_each_bind_host_at_a_usable_address(host: str, url: str) -> None:
    server = Server(Path("bin"), Path("model"), host=host, http_port=9000, metrics_port=6000)
    assert server.url == url
    assert server.metrics_url == url.replace(":9000", ":6000") + "/prometheus"
