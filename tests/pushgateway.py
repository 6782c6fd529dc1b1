"""A real Prometheus Pushgateway and a real Prometheus that scrapes it, on loopback, for the tests
of what batch runs and edge devices push: started here, stopped by the PIDs started here."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from modelops.rehearsal.processes import free_ports
from tests.support import tool_or_skip

READY_SECONDS = 20.0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def pushgateway_and_prometheus(
    folder: Path,
    *,
    rule_files: Sequence[Path] = (),
    until: Callable[[str], bool] = lambda _: True,
) -> Iterator[tuple[str, str]]:
    """(Pushgateway URL, Prometheus URL), once both answer and `until(prometheus URL)` holds.

    Prometheus scrapes the gateway every second with honor_labels (the pushed `job` and
    grouping labels stay), and evaluates `rule_files` every second.
    """
    pushgateway = tool_or_skip(
        "prometheus-pushgateway", "pushgateway", install="apt-get install prometheus-pushgateway"
    )
    prometheus = tool_or_skip("prometheus", install="apt-get install prometheus")
    gateway_port, prometheus_port = free_ports(2)
    gateway = f"127.0.0.1:{gateway_port}"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [gateway]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    log_file = folder / "servers.log"
    started: list[subprocess.Popen[bytes]] = []
    with log_file.open("wb") as log:
        try:
            started.append(
                subprocess.Popen(
                    [pushgateway, f"--web.listen-address={gateway}"], stdout=log, stderr=log
                )
            )
            started.append(
                subprocess.Popen(
                    [
                        prometheus,
                        f"--config.file={folder / 'prometheus.yml'}",
                        f"--storage.tsdb.path={folder / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    ],
                    stdout=log,
                    stderr=log,
                )
            )
            urls = (f"http://{gateway}", f"http://127.0.0.1:{prometheus_port}")
            deadline = time.monotonic() + READY_SECONDS
            while not (
                _ready(f"{urls[0]}/-/ready") and _ready(f"{urls[1]}/-/ready") and until(urls[1])
            ):
                assert all(p.poll() is None for p in started), log_file.read_text()
                assert time.monotonic() < deadline, log_file.read_text()
                time.sleep(0.1)
            yield urls
        finally:
            for process in started:
                process.terminate()
            for process in started:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
