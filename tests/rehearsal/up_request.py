"""What the rehearsal's plan tests ask `modelops up` for: the defaults of its options on the
usual ports, which each test file varies with `dataclasses.replace`."""

from __future__ import annotations

from modelops.rehearsal.plan import UpRequest

UP_REQUEST = UpRequest(
    env="production",
    minutes=10.0,
    rate=5.0,
    rows=1,
    canary_percent=None,
    canary_errors=0.0,
    label_delay=30.0,
    time_scale=60.0,
    shift=None,
    shift_at=60.0,
    shift_for=120.0,
    prometheus_port=9090,
    alertmanager_port=9093,
    stable_port=9000,
    canary_port=9001,
    stable_metrics_port=6000,
    canary_metrics_port=6001,
)
