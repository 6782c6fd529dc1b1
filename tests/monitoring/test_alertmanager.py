"""The example Alertmanager configuration, checked by the real Alertmanager and amtool.

`amtool check-config` parses it as Alertmanager does; `amtool config routes test` says which
receiver an alert's labels reach. amtool cannot evaluate inhibition, so a real Alertmanager
(Debian's `prometheus-alertmanager`, upstream's `alertmanager`) is started on a free loopback
port with that file, sent the alerts modelops renders (their labels as the rules set them), and
asked which ones it suppresses. The receivers' placeholder URLs are never reached: every test
ends before the first group_wait. Under CI (`CI` set) a missing tool fails; elsewhere the tests
skip and say how to install it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelops.rehearsal import processes
from tests.support import REPO_ROOT, rendered_rules, tool_or_skip

CONFIG = REPO_ROOT / "manifests" / "alertmanager" / "alertmanager.yml"
ALERTS_DOC = REPO_ROOT / "runbooks" / "alerts.md"
# Every alert the rules render, with the labels routing and inhibition read: (severity, category).
ALERTS = {
    "ModelopsAvailabilityFastBurn": ("page", "service"),
    "ModelopsAvailabilitySlowBurn": ("ticket", "service"),
    "ModelopsLatencyFastBurn": ("page", "service"),
    "ModelopsLatencySlowBurn": ("ticket", "service"),
    "ModelopsTargetDown": ("page", "nodata"),
    "ModelopsNoTraffic": ("ticket", "nodata"),
    "ModelopsNoFeedback": ("ticket", "nodata"),
    "ModelopsFeatureDrift": ("ticket", "ml"),
    "ModelopsScoreDrift": ("ticket", "ml"),
    "ModelopsMissingValues": ("ticket", "ml"),
    "ModelopsUnseenCategories": ("ticket", "ml"),
    "ModelopsRecallLow": ("ticket", "ml"),
    "ModelopsPrecisionLow": ("ticket", "ml"),
    "ModelopsBusinessValueLow": ("ticket", "ml"),
    "ModelopsModelStale": ("ticket", "ml"),
    "ModelopsTelemetryErrors": ("ticket", "service"),
}
BATCH_ALERTS = {
    "ModelopsBatchRunFailed": ("ticket", "service"),
    "ModelopsBatchRunMissed": ("ticket", "nodata"),
    "ModelopsBatchFeatureDrift": ("ticket", "ml"),
    "ModelopsBatchScoreDrift": ("ticket", "ml"),
}
"""A batch environment's alerts (observability/batch.py), on what its runs push."""
PRODUCTION, STAGING = "churn-production", "churn-staging"
# Namespaces of their own for the tests that share the Alertmanager with the first.
BURNING, SILENCED = "churn-burning", "churn-silenced"
READY_SECONDS = 15.0
INSTALL = "apt-get install prometheus-alertmanager"


def _config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return loaded


def _labels(alertname: str, namespace: str = PRODUCTION) -> dict[str, str]:
    """An alert's labels as the rendered rules set them."""
    severity, category = ALERTS[alertname]
    environment = namespace.removeprefix("churn-")
    return {
        "alertname": alertname,
        "severity": severity,
        "category": category,
        "environment": environment,
        "namespace": namespace,
    }


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool_or_skip("amtool", install=INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- the file as Alertmanager reads it, and its routes ---------------------------------------


def test_amtool_accepts_the_config() -> None:
    done = _amtool("check-config", str(CONFIG))
    assert done.returncode == 0, f"amtool check-config failed:\n{done.stdout}{done.stderr}"
    assert "SUCCESS" in done.stdout, done.stdout
    assert "3 receivers" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page"], "page"),
        (["severity=ticket"], "ticket"),
        (["severity=info"], "default"),  # a severity no route knows
        ([], "default"),  # no severity at all
        ([f"{k}={v}" for k, v in _labels("ModelopsTargetDown").items()], "page"),
        ([f"{k}={v}" for k, v in _labels("ModelopsFeatureDrift", STAGING).items()], "ticket"),
    ],
    ids=["page", "ticket", "unknown-severity", "no-severity", "target-down", "drift-staging"],
)
def test_each_severity_reaches_its_receiver(labels: list[str], receiver: str) -> None:
    # Given an alert's labels, when amtool walks the routing tree, then it names the receiver.
    done = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert done.returncode == 0, f"{labels} did not reach {receiver}: {done.stdout}{done.stderr}"
    assert done.stdout.strip() == receiver, done.stdout


def test_alerts_are_grouped_per_alert_and_environment_and_pages_come_sooner() -> None:
    route = _config()["route"]
    assert route["group_by"] == ["alertname", "namespace"], route["group_by"]
    routes = {tuple(r["matchers"]): r for r in route["routes"]}
    page, ticket = routes[('severity="page"',)], routes[('severity="ticket"',)]
    assert page["receiver"] == "page", page
    assert ticket["receiver"] == "ticket", ticket
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert _seconds(page[key]) < _seconds(ticket[key]), f"{key}: a page waits less"


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


# --- inhibition, by the file and by a real Alertmanager ---------------------------------------


def _matched(matchers: list[str], labels: dict[str, str]) -> bool:
    """Whether Alertmanager's matchers (=, =~ on one label each, as this file uses) match."""
    for matcher in matchers:
        parsed = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher)
        assert parsed, f"{matcher}: not a matcher this test reads"
        name, operator, value = parsed.groups()
        actual = labels.get(name, "")
        if (operator == "=" and actual != value) or (
            operator == "=~" and not re.fullmatch(value, actual)
        ):
            return False
    return True


def test_inhibit_rules_name_the_contracts_alerts_and_labels() -> None:
    rules = _config()["inhibit_rules"]
    for rule in rules:
        assert rule["equal"] == ["namespace"], f"{rule}: only within one environment"
        sources = [a for a in ALERTS if _matched(rule["source_matchers"], _labels(a))]
        targets = [a for a in ALERTS if _matched(rule["target_matchers"], _labels(a))]
        assert sources, f"{rule}: its source matches no alert"
        assert targets, f"{rule}: its target matches no alert"
        assert not set(sources) & set(targets), f"{rule}: an alert would inhibit itself"
    target_down = [r for r in rules if r["source_matchers"] == ['alertname="ModelopsTargetDown"']]
    muted = {a for r in target_down for a in ALERTS if _matched(r["target_matchers"], _labels(a))}
    ml = {a for a, (_, category) in ALERTS.items() if category == "ml"}
    assert muted == ml | {"ModelopsNoTraffic", "ModelopsNoFeedback"}, sorted(muted)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager with the example config, on a free loopback port; stopped after."""
    binary = tool_or_skip("alertmanager", "prometheus-alertmanager", install=INSTALL)
    (port,) = processes.free_ports(1)
    storage = tmp_path_factory.mktemp("alertmanager")
    url = f"http://127.0.0.1:{port}"
    with (storage / "log").open("w") as log:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={CONFIG}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip port: a single instance
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _ready(url):
            assert server.poll() is None, f"alertmanager exited: {(storage / 'log').read_text()}"
            assert time.monotonic() < deadline, f"not ready: {(storage / 'log').read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _post(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def _states(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(alertname, namespace) -> status of every alert Alertmanager holds."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as answer:
        alerts = json.loads(answer.read())
    return {(a["labels"]["alertname"], a["labels"]["namespace"]): a["status"] for a in alerts}


def _settled(url: str, key: tuple[str, str], state: str) -> dict[tuple[str, str], Any]:
    """The states once `key` has reached `state` (the inhibitor reads alerts asynchronously)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        states = _states(url)
        if key in states and states[key]["state"] == state:
            return states
        assert time.monotonic() < deadline, f"{key} never became {state}: {states.get(key)}"
        time.sleep(0.1)


def test_a_down_target_mutes_the_ml_and_no_data_alerts_of_its_namespace_only(
    alertmanager: str,
) -> None:
    # Given production's pods cannot be scraped, and every other alert fires in both namespaces,
    # (but the fast burns: they mute the slow burns, the next test's subject).
    firing = [
        _labels(name, namespace)
        for name in ALERTS
        for namespace in (PRODUCTION, STAGING)
        if not name.endswith("FastBurn") and (name, namespace) != ("ModelopsTargetDown", STAGING)
    ]
    _post(alertmanager, firing)
    # when Alertmanager has read them,
    states = _settled(alertmanager, ("ModelopsFeatureDrift", PRODUCTION), "suppressed")
    # then in production exactly the ML alerts, NoTraffic and NoFeedback are suppressed,
    muted = {a for a, ns in states if ns == PRODUCTION and states[a, ns]["state"] == "suppressed"}
    ml = {a for a, (_, category) in ALERTS.items() if category == "ml"}
    assert muted == ml | {"ModelopsNoTraffic", "ModelopsNoFeedback"}, sorted(muted)
    assert all(states[a, PRODUCTION]["inhibitedBy"] for a in muted), "muted by inhibition"
    # the page itself and the service alerts still notify, and staging is untouched.
    assert states["ModelopsTargetDown", PRODUCTION]["state"] == "active"
    assert states["ModelopsTelemetryErrors", PRODUCTION]["state"] == "active"
    active = {a for a, ns in states if ns == STAGING and states[a, ns]["state"] == "active"}
    assert active == {a for a, ns in states if ns == STAGING}, "staging has no down target"


def test_a_fast_burn_mutes_the_slow_burn_of_the_same_objective(alertmanager: str) -> None:
    # Given availability burns fast, and both slow burns fire,
    names = ("AvailabilityFastBurn", "AvailabilitySlowBurn", "LatencySlowBurn")
    _post(alertmanager, [_labels(f"Modelops{name}", BURNING) for name in names])
    # then only availability's slow burn is suppressed: latency's says something else.
    states = _settled(alertmanager, ("ModelopsAvailabilitySlowBurn", BURNING), "suppressed")
    assert states["ModelopsAvailabilityFastBurn", BURNING]["state"] == "active"
    assert states["ModelopsLatencySlowBurn", BURNING]["state"] == "active"


def test_the_runbooks_silence_command_silences_the_alert(alertmanager: str) -> None:
    # Given the alert the runbook's example silences fires (on the canary),
    command = _silence_command()
    (name,) = [w.partition("=")[2] for w in command if w.startswith("alertname=")]
    _post(alertmanager, [{**_labels(name, SILENCED), "track": "canary"}])
    # when the command runbooks/alerts.md shows is run,
    done = _amtool(*command, f"--alertmanager.url={alertmanager}")
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    # then Alertmanager holds it as silenced by that silence.
    states = _settled(alertmanager, (name, SILENCED), "suppressed")
    assert states[name, SILENCED]["silencedBy"] == [done.stdout.strip()]


def _silence_command() -> list[str]:
    """The `amtool silence add` of runbooks/alerts.md, in this test's namespace."""
    text = ALERTS_DOC.read_text()
    found = re.search(r"^amtool silence add (.*?)(?<!\\)$", text, flags=re.MULTILINE | re.DOTALL)
    assert found, "runbooks/alerts.md shows how to silence an alert with amtool"
    words = shlex.split(found.group(0).replace("\\\n", " "))
    words = [w for w in words[1:] if not w.startswith("--alertmanager.url")]
    return [w.replace(PRODUCTION, SILENCED) for w in words]


# --- the runbook and the rules name the same alerts -------------------------------------------


def test_the_alerts_runbook_has_one_section_per_alert() -> None:
    # runbook_url points at runbooks/alerts.md#<lowercased name>: GitHub's anchor of `## Name`.
    headings = re.findall(r"^## (\S+)\s*$", ALERTS_DOC.read_text(), flags=re.MULTILINE)
    assert sorted(h for h in headings if h.startswith("Modelops")) == sorted(
        [*ALERTS, *BATCH_ALERTS]
    )


RULE_FILES = rendered_rules()


@pytest.mark.parametrize("path", sorted(RULE_FILES))
def test_the_rendered_rules_carry_the_labels_the_routes_and_inhibitions_read(path: str) -> None:
    groups = yaml.safe_load(RULE_FILES[path])["groups"]
    rules = [r for g in groups for r in g["rules"]]
    expected = BATCH_ALERTS if any(g["name"].endswith("-batch") for g in groups) else ALERTS
    alerts = {r["alert"]: r["labels"] for r in rules if "alert" in r}
    assert set(alerts) == set(expected), f"{path}: {sorted(set(alerts) ^ set(expected))}"
    for name, labels in alerts.items():
        severity, category = expected[name]
        assert (labels.get("severity"), labels.get("category")) == (severity, category), name
