"""The edge kind of `deploy.environments`: a fleet of devices runs a signed bundle.

An edge environment is released like the others (`modelops release deploy --bundle` pins the
bundle archive's sha256; promote, rollback and restore are commits) and rendered to a fleet
manifest that devices poll (`modelops_contract.fleet`): the stable bundle, and during a rollout
a candidate taken by a percent of the devices, chosen from a stable device id and the salt.
There are no pods here, so the real-time and batch keys are refused with what to do instead.
"""

from __future__ import annotations

import itertools
from typing import Literal, TypeAlias

from pydantic import Field, field_validator, model_validator

from modelops.params.base import Frozen

_NOT_HERE = {
    "namespace": "devices are not in a Kubernetes namespace; render writes the fleet manifest "
    "they poll (manifests/rendered/<env>/fleet.json)",
    "target": "devices run the bundle themselves, not a model server on Seldon or KServe",
    "canary_steps": "a rollout's steps are percents of devices: use cohort_steps",
    "canary_replicas": "devices are not replicas; the cohort decides which devices take it",
    "shadow_first": "a device cannot mirror requests; start with a small first cohort step",
    "resources": "devices bring their own hardware",
    "autoscaling": "devices bring their own hardware",
    "schedule": "devices score when they are asked to; a scheduled table is strategy batch",
    "engine": "the bundle's runtime is chosen with format (onnx or native)",
}
EdgeFormat: TypeAlias = Literal["onnx", "native"]
"""What a bundle holds: ONNX for onnxruntime, or a compiled tree library (native)."""
_KEY_NAME = r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$|^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"


class EdgeEnvironmentParams(Frozen):
    """An edge environment: devices download the released bundle and verify it before use."""

    strategy: Literal["edge"] = Field(
        description="`edge`: devices poll a fleet manifest and download the released bundle; a "
        "new bundle reaches the first of `cohort_steps` percent of them, `modelops release "
        "promote` widens it."
    )
    format: EdgeFormat = Field(
        description="The bundle format the devices run: `onnx` (onnxruntime) or `native` (a "
        "compiled library). A bundle of another format is refused at deploy."
    )
    bundle_base_url: str = Field(
        pattern=r"^https?://\S+$",
        description="Where devices download bundles: the address at which the store's bundles/ "
        "folder is served, so a bundle is at <bundle_base_url>/<sha256>.tar.gz.",
    )
    public_key: str = Field(
        pattern=_KEY_NAME,
        description="The public key devices verify bundles with, by name or URL (devices hold "
        "it pinned; the manifest only names it). Never a private key.",
    )
    cohort_steps: tuple[int, ...] = Field(
        (5, 25, 50),
        description="Percents of the devices a new bundle reaches, increasing (like canary "
        "steps); the promote after the last makes it stable for every device. []: a new "
        "bundle goes to every device at once.",
    )
    salt: str | None = Field(
        None,
        pattern=r"^\S+$",
        description="Mixed into each device's cohort bucket (default: the environment's name). "
        "A new salt reshuffles which devices take a candidate first.",
    )

    @model_validator(mode="before")
    @classmethod
    def _other_strategy_keys(cls, values: object) -> object:
        # Refused here rather than declared as fields: an edge environment has no namespace,
        # target or canary steps for code to read by mistake.
        found = [key for key in _NOT_HERE if isinstance(values, dict) and key in values]
        if found:
            why = "; ".join(f"{key}: {_NOT_HERE[key]}" for key in found)
            raise ValueError(f"not for strategy edge ({why}). Delete {', '.join(found)}")
        return values

    @field_validator("public_key", mode="before")
    @classmethod
    def _never_a_private_key(cls, key: object) -> object:
        if isinstance(key, str) and ("PRIVATE KEY" in key or "-----BEGIN" in key):
            raise ValueError(
                "give the public key's name or URL (e.g. https://keys.example/edge.pub), not "
                "key material; a private key never goes in params.yaml: keep it in your CI's "
                "secrets and rotate it now if it was committed"
            )
        if isinstance(key, str) and "private" in key.rsplit("/", 1)[-1].lower():
            raise ValueError(
                f"'{key}' names a private key: devices verify with the public one; give its "
                "name or URL"
            )
        return key

    @field_validator("cohort_steps")
    @classmethod
    def _steps_increase_below_100(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError(f"each cohort step is a percent from 1 to 100, got {list(steps)}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"cohort steps must increase, got {list(steps)}; e.g. [5, 25, 50]")
        return steps

    @field_validator("bundle_base_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")


def fleet_salt(environment_name: str, environment: EdgeEnvironmentParams) -> str:
    """The salt of an environment's cohorts: its own, or its name."""
    return environment.salt or environment_name


def bundle_url(environment: EdgeEnvironmentParams, sha256: str) -> str:
    """Where a device downloads the bundle archive with this sha256."""
    return f"{environment.bundle_base_url}/{sha256}.tar.gz"
