"""Push a device's counts to a Prometheus Pushgateway as the contract's series.

The series, their labels and the grouping key are `modelops_contract.edge`'s. The body is the
Prometheus text format (0.0.4), written here with the standard library; the request is a PUT to
`<pushgateway>/metrics/job/<job>/device/<device id>`, which replaces that device's group, so
the gateway holds exactly the device's last report. Every bin is pushed, empty ones as 0, so a
reader sees the same series from every device of a bundle.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping

from modelops_contract.edge import (
    BUNDLE,
    BUNDLE_INFO,
    DEVICE,
    FEATURE_BIN,
    LAST_REPORT,
    POSITIVE_ROWS,
    ROWS,
    SCORE_BIN,
    TRACK,
)
from modelops_contract.series import BIN, FEATURE, MODEL_HASH, MODEL_VERSION, Series

from modelops_device.counts import Counts, ProfileBins
from modelops_device.state import DeviceError, Installed

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT_SECONDS = 30.0
Sample = tuple[Mapping[str, str], float]


def exposition(bundle: Installed, bins: ProfileBins, counts: Counts, *, now: float) -> str:
    """The counts as the contract's series, in Prometheus' text format."""
    common = {MODEL_VERSION: bundle.version, TRACK: bundle.track}
    features: list[Sample] = [
        (common | {FEATURE: feature.name, BIN: label}, float(rows))
        for feature in bins.features
        for label, rows in zip(feature.labels, counts.features[feature.name], strict=True)
    ]
    scores: list[Sample] = [
        (common | {BIN: label}, float(rows))
        for label, rows in zip(bins.score_labels, counts.score, strict=True)
    ]
    families: list[tuple[Series, list[Sample]]] = [
        (ROWS, [(common, float(counts.rows))]),
        (POSITIVE_ROWS, [(common, float(counts.positive_rows))]),
        (FEATURE_BIN, features),
        (SCORE_BIN, scores),
        (BUNDLE_INFO, [(common | {MODEL_HASH: bundle.model_hash, BUNDLE: bundle.sha256}, 1.0)]),
        (LAST_REPORT, [(common, now)]),
    ]
    return "".join(_family(series, samples) for series, samples in families)


def _family(series: Series, samples: Iterable[Sample]) -> str:
    (name,) = series.samples
    lines = [
        f"# HELP {series.family} {_help(series.help)}",
        f"# TYPE {series.family} {series.kind}",
    ]
    for labels, value in samples:
        assert set(labels) == set(series.labels), f"{series.name}: labels {sorted(labels)}"
        pairs = ",".join(f'{label}="{_escape(labels[label])}"' for label in series.labels)
        lines.append(f"{name}{{{pairs}}} {value!r}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def group_url(pushgateway: str, *, job: str, device_id: str) -> str:
    """The device's group at the gateway: job and device in the path (base64 when a value
    holds a slash, as the Pushgateway's API asks)."""
    base = pushgateway if "://" in pushgateway else f"http://{pushgateway}"
    path = "/".join(_segment(label, value) for label, value in (("job", job), (DEVICE, device_id)))
    return f"{base.rstrip('/')}/metrics/{path}"


def _segment(label: str, value: str) -> str:
    if not value:
        raise DeviceError(f"the {label} of a push is a non-empty string")
    if "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode()).decode()
        return f"{label}@base64/{encoded}"
    return f"{label}/{urllib.parse.quote(value, safe='')}"


def push(url: str, body: str) -> None:
    """PUT `body` to the group at `url`; refused with the gateway's answer or why it could not
    be reached."""
    request = urllib.request.Request(
        url, data=body.encode(), method="PUT", headers={"Content-Type": CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError as exc:
        answer = exc.read().decode(errors="replace").strip()
        raise DeviceError(f"the Pushgateway refused the report ({exc.code}): {answer}") from None
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeviceError(f"unreachable: the Pushgateway at {url}: {reason}") from None
