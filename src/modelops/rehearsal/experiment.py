"""An A/B experiment rehearsed: what `modelops up` runs when the release runs one (pure).

In a cluster the stable predictor's pods hold every variant and route each row by its unit's
hash, so a unit meets the same variant whichever pod answers. The rehearsal runs two replicas
of that predictor (two server processes with the same `experiment` parameter, the variants'
models fetched from the store), and traffic from units that come back again and again, spread
over both replicas as a load balancer would. Two options make a known truth to find:
`--effect VARIANT=SIZE` (VARIANT's answers turn out right more often) and `--broken-split
VARIANT=SHARE` (the client loses a share of VARIANT's units: the sample-ratio check must stop
it). `modelops experiment analyze` then judges it from the rehearsal's Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import modelops_contract as contract

from modelops.data import Schema
from modelops.deploy.render import experiment_parameter
from modelops.errors import RehearsalError
from modelops.rehearsal import plan
from modelops.rehearsal.plan import (
    Rehearsal,
    Served,
    ServerPlan,
    TrafficPlan,
    UpRequest,
    parse_shift,
)
from modelops.releases.state import Experiment

REPLICAS = 2
DEFAULT_UNITS = 3000
"""Units made up when the test rows do not carry the unit field (and --units is not given)."""
_EXPERIMENT_OPTIONS = (
    ("effect", "--effect"),
    ("broken_split", "--broken-split"),
    ("units", "--units"),
)
_CANARY_OPTIONS = (
    ("canary_percent", None, "--canary-percent"),
    ("canary_errors", 0.0, "--canary-errors"),
)


@dataclass(frozen=True)
class UnitTraffic:
    """An experiment's traffic besides the rows (what `rehearsal.traffic` reads): the unit
    each row carries, the assignment (to lose one variant's units), and a true effect."""

    unit: str
    salt: str
    split: tuple[tuple[str, int], ...]
    count: int | None
    """Units to make up, each sending one test row again and again; None: the rows' own."""
    appended: bool
    """The unit is no model input: requests carry it as one more column."""
    effect: Mapping[str, float]
    """Variant -> chance that a row it answered gets its own predicted class as the truth."""
    broken: Mapping[str, float]
    """Variant -> share of its units the client loses (they never send)."""
    threshold: float
    positive_label: str
    negative_label: str


def check_no_experiment(request: UpRequest) -> None:
    """Refuse the experiment's options where no experiment runs (rather than ignore them)."""
    given = [
        flag for field, flag in _EXPERIMENT_OPTIONS if getattr(request, field) not in ((), None)
    ]
    if given:
        raise RehearsalError(
            f"{', '.join(given)} rehearse an A/B experiment, and {request.env}'s release runs "
            f"none: start one (modelops release experiment start --env {request.env}; "
            "runbooks/ab-experiments.md), or drop them"
        )


def variant_shares(option: str, given: Sequence[str], variants: Sequence[str]) -> dict[str, float]:
    """`VARIANT=SHARE` options as {variant: share}, or a refusal naming the fix."""
    shares: dict[str, float] = {}
    for text in given:
        name, equals, number = text.partition("=")
        try:
            share = float(number)
        except ValueError:
            share = math.nan
        if not equals or math.isnan(share):
            raise RehearsalError(
                f"{option} must be VARIANT=SHARE with a number, got {text!r} (e.g. {option} "
                f"{variants[-1]}=0.3)"
            )
        if name not in variants:
            raise RehearsalError(
                f"{option} {text}: {name!r} is not a variant of the experiment "
                f"({', '.join(variants)})"
            )
        if not 0 <= share <= 1:
            raise RehearsalError(f"{option} {text}: the share must be from 0 to 1, got {share:g}")
        if name in shares:
            raise RehearsalError(f"{option} names {name} twice: give each variant once")
        shares[name] = share
    return shares


def plan_experiment(
    request: UpRequest,
    *,
    schema: Schema,
    experiment: Experiment,
    served: Mapping[str, Served],
    threshold: float,
) -> Rehearsal:
    """Two replicas of the stable predictor serving `experiment` (`served`: each variant's
    fetched model, by name), and traffic from sticky units over both."""
    given = [flag for field, default, flag in _CANARY_OPTIONS if getattr(request, field) != default]
    if given:
        raise RehearsalError(
            f"{', '.join(given)}: {request.env} runs {experiment.describe()} and no canary "
            "(an experiment takes the whole traffic)"
        )
    names = [variant.name for variant in experiment.variants]
    for variant in experiment.variants:
        if served[variant.name].digest != variant.model.model_hash:
            raise RehearsalError(
                f"variant {variant.name}'s model {variant.model.version} is not in the store "
                f"({served[variant.name].note}): the experiment cannot be served without it"
            )
    from_rows = experiment.unit in (schema.id, *schema.features)
    if request.units is not None and not 1 <= request.units <= 1_000_000:
        raise RehearsalError(f"--units must be from 1 to 1000000, got {request.units}")
    if request.units is not None and experiment.unit in schema.features:
        raise RehearsalError(
            f"--units: the unit {experiment.unit} is a model input, so the test rows' own "
            "values are the units: drop --units"
        )
    count = request.units
    if count is None and not from_rows:
        count = DEFAULT_UNITS
    units = UnitTraffic(
        unit=experiment.unit,
        salt=experiment.salt,
        split=tuple(experiment.split.items()),
        count=count,
        appended=experiment.unit not in schema.features,
        effect=variant_shares("--effect", request.effect, names),
        broken=variant_shares("--broken-split", request.broken_split, names),
        threshold=threshold,
        positive_label=schema.positive_label,
        negative_label=schema.negative_label,
    )
    traffic = TrafficPlan(
        seconds=request.minutes * 60,
        requests_per_second=request.rate,
        rows_per_request=request.rows,
        canary_percent=0,
        label_delay_seconds=request.label_delay,
        shift=parse_shift(request, schema.features),
        units=units,
    )
    stable = served[contract.experiment.CONTROL]
    parameter = experiment_parameter(
        experiment, "", directories={name: str(served[name].directory) for name in names}
    )
    ports = (
        (request.stable_port, request.stable_metrics_port),
        (request.canary_port, request.canary_metrics_port),
    )
    servers = tuple(
        ServerPlan(
            track=contract.STABLE,
            model_dir=stable.directory,
            model_version=experiment.variants[0].model.version,
            model_hash=stable.digest,
            http_port=http,
            metrics_port=metrics,
            pod=f"{contract.STABLE}-{index}",
            experiment=parameter,
        )
        for index, (http, metrics) in enumerate(ports[:REPLICAS])
    )
    arms = ", ".join(f"{name} ({served[name].note})" for name in names)
    notes = tuple(
        f"replica {index + 1} of {REPLICAS}, every variant: {arms}" for index in range(REPLICAS)
    )
    return Rehearsal(
        request=request,
        servers=servers,
        notes=notes,
        traffic=traffic,
        schema=schema,
        follow=False,
        shadow=False,
        experiment=experiment,
    )


def to_text(rehearsal: Rehearsal, pids: Sequence[int], *, state: str) -> str:
    """What `modelops up` prints for an experiment: the split, what was made to be found,
    the commands that judge it, then the addresses and queries."""
    experiment, units = rehearsal.experiment, rehearsal.traffic.units
    assert experiment is not None
    assert units is not None
    request = rehearsal.request
    split = ", ".join(f"{v.name} {v.share}% ({v.model.version})" for v in experiment.variants)
    who = f"{units.count:,} made-up units" if units.count is not None else "the test rows' units"
    lines = [
        f"up: {len(pids)} processes (PIDs {', '.join(str(pid) for pid in pids)}); traffic for "
        f"{request.minutes:g} min at {request.rate:g} requests/s over {REPLICAS} replicas of "
        f"stable from {who}, truth after {request.label_delay:g} s",
        f"  experiment  {experiment.name}: {split}, units by {units.unit}",
    ]
    for name, size in units.effect.items():
        lines.append(
            f"  effect      {name}: {size:.0%} of the rows it answers get its own predicted class "
            "as the truth (it is right more often)"
        )
    for name, share in units.broken.items():
        lines.append(
            f"  broken      the client loses {share:.0%} of {name}'s units: the sample-ratio "
            "check should stop the experiment"
        )
    prometheus = request.prometheus_url
    lines += [
        f"  verdict     modelops experiment analyze --env {request.env} --prometheus {prometheus}",
        f"  plan        modelops experiment plan --env {request.env} --prometheus {prometheus} "
        "--window 10m",
    ]
    return plan.to_text(rehearsal, pids, state=state, heading=lines, shown_queries=queries())


def queries() -> list[tuple[str, str]]:
    """Ready-to-paste PromQL for an experiment, each with what it answers."""
    value = contract.BUSINESS_VALUE.total
    return [
        (
            "units per variant (each counted once per server process)",
            f"sum by (variant) ({contract.EXPERIMENT_UNITS.total})",
        ),
        (
            "predicted rows per variant, with and without a unit",
            f"sum by (variant, assigned) (rate({contract.EXPERIMENT_ASSIGNMENTS.total}[1m]))",
        ),
        (
            "labelled rows per variant and cell",
            f"sum by (variant, cell) ({contract.EXPERIMENT_FEEDBACK_ROWS.total})",
        ),
        (
            "net business value by model version",
            f'sum by (model_version) ({value}{{sign="{contract.GAIN}"}}) '
            f'- sum by (model_version) ({value}{{sign="{contract.COST}"}})',
        ),
        ("requests by replica", f"sum by (pod) (rate({contract.REQUESTS.total}[1m]))"),
    ]
