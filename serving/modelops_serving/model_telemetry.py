"""A served model's telemetry, built from the server's parameters and its reference profile.

The server builds one per model it serves (in an A/B experiment, one per variant, each under
its own model_version): the counters of `modelops_serving.telemetry`, binning on the model's
own profile.json, or nothing when telemetry is off.
"""

from __future__ import annotations

import dataclasses
import logging

from modelops_serving import telemetry
from modelops_serving.artifact import Artifact
from modelops_serving.profile import Profile, ProfileError, parse_profile

logger = logging.getLogger(__name__)


def model_telemetry(
    artifact: Artifact, *, model_version: str, threshold: float, setting: str, business_value: str
) -> telemetry.Telemetry | None:
    """The model's telemetry, or None when it is off.

    Raises:
        ValueError: a bad `telemetry` or `business_value` setting, with why.
    """
    on = telemetry.enabled(setting)
    value = telemetry.parse_business_value(business_value) if business_value else None
    if not on:
        logger.warning("telemetry is off: no modelops_* metrics on /prometheus")
        return None
    if not telemetry.multiprocess():
        logger.warning(
            "prometheus_client is not in multiprocess mode (no prometheus_multiproc_dir when it "
            "was imported): start with modelops-microservice, or the metrics stay in each worker"
        )
    return telemetry.Telemetry(
        model_version=model_version,
        classes=artifact.classes,
        positive_label=artifact.positive_label,
        threshold=threshold,
        profile=reference_profile(artifact),
        business_value=value,
    )


def reference_profile(artifact: Artifact) -> Profile | None:
    """The reference profile, or None (logged once, here, in the first process) without one."""
    where = artifact.path / "profile.json"
    if artifact.profile_bytes is None:
        logger.warning(
            "%s: not found (a model trained before reference profiles): serving without "
            "per-feature and score-bin metrics",
            where,
        )
        return None
    try:
        profile = parse_profile(artifact.profile_bytes, where=str(where))
    except ProfileError as exc:
        logger.error("%s; serving without per-feature and score-bin metrics", exc)
        return None
    # Bin only what the model takes, as the profile typed it: a feature the signature lacks, or
    # types otherwise, would fail on every request.
    kinds = {column.name: column.kind for column in artifact.columns}
    numeric = tuple(b for b in profile.numeric if kinds.get(b.name) == "number")
    categorical = tuple(b for b in profile.categorical if kinds.get(b.name) == "string")
    kept = {b.name for b in numeric} | {b.name for b in categorical}
    dropped = sorted({b.name for b in profile.features} - kept)
    if dropped:
        logger.error(
            "%s: %s not inputs of the model of that type; serving without their bins",
            where,
            ", ".join(dropped),
        )
    return dataclasses.replace(profile, numeric=numeric, categorical=categorical)
