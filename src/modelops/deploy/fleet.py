"""An edge environment's fleet manifest: what `render` writes for the devices, and its check.

The manifest's form and the cohort rule are the contract's (`modelops_contract.fleet`), which
devices share; here a release becomes that manifest (the stable bundle, and the candidate with
its percent of the devices while a rollout runs), and a rendered manifest is checked against
the JSON Schema shipped with the contract and read back with the devices' own parser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from modelops_contract import fleet

from modelops.errors import DeployError
from modelops.params import EdgeEnvironmentParams, EnvironmentParams, bundle_url, fleet_salt
from modelops.releases.state import ModelVersion, Release

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


def fleet_path(environment: str) -> str:
    """Where an environment's fleet manifest is rendered, relative to `manifests/`."""
    return f"rendered/{environment}/{fleet.FLEET_FILE}"


def is_fleet_file(path: str) -> bool:
    """Whether a generated file (relative to `manifests/` or the root) is a fleet manifest."""
    return path.endswith(f"/{fleet.FLEET_FILE}")


def fleet_manifest(
    name: str, environment: EdgeEnvironmentParams, release: Release
) -> fleet.FleetManifest:
    """The manifest of an edge environment's release (which has a stable bundle).

    Raises:
        DeployError: a release whose model is not a bundle, or a bundle of another format
            than the environment's (its `format` was changed after the release).
    """
    assert release.stable is not None, "an environment without a release renders nothing"
    candidate = None
    if release.canary is not None:
        candidate = fleet.Candidate(
            bundle=_bundle(release.canary.model, name, environment),
            percent=release.canary.weight,
            salt=fleet_salt(name, environment),
        )
    return fleet.FleetManifest(
        environment=name,
        format=environment.format,
        public_key=environment.public_key,
        stable=_bundle(release.stable, name, environment),
        candidate=candidate,
    )


def render_fleet(name: str, environment: EdgeEnvironmentParams, release: Release) -> str:
    """The fleet manifest's text, byte-stable for the same params and release."""
    return fleet_manifest(name, environment, release).to_json()


def _bundle(
    model: ModelVersion, name: str, environment: EdgeEnvironmentParams
) -> fleet.FleetBundle:
    bundle = model.bundle
    if bundle is None:
        raise DeployError(
            f"{name} is an edge environment, but its release names {model.version}, which is "
            f"not a bundle: deploy one (modelops release deploy --env {name} --bundle "
            "PATH.tar.gz), or change the environment's strategy back"
        )
    if bundle.format != environment.format:
        raise DeployError(
            f"{name}: bundle {model.version} is {bundle.format}, but deploy.environments.{name}"
            f".format is {environment.format}: set format back to {bundle.format}, or deploy a "
            f"{environment.format} bundle first"
        )
    return fleet.FleetBundle(
        version=model.version,
        url=bundle_url(environment, bundle.sha256),
        sha256=bundle.sha256,
        model_hash=model.model_hash,
        format=environment.format,
    )


def fleet_problems(path: str, text: str) -> Iterator[str]:
    """What is wrong with a rendered fleet manifest: its JSON Schema, then the devices' parser."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        yield f"{path}: not JSON ({exc})"
        return
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.path)))
    for error in errors:
        where = ".".join(str(part) for part in error.path) or "(top level)"
        yield f"{path}: fleet manifest {where}: {error.message}"
    if errors:
        return
    try:
        fleet.parse_fleet_manifest(text)
    except fleet.FleetManifestError as exc:
        yield f"{path}: a device would refuse it: {exc}"


def fleet_schema() -> dict[str, object]:
    """The fleet manifest's JSON Schema, as shipped with the contract."""
    text = resources.files(fleet.__package__ or "modelops_contract") / fleet.SCHEMA_FILE
    loaded: dict[str, object] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator() -> Validator:
    import jsonschema

    schema = fleet_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def model_environments(params_environments: Mapping[str, EnvironmentParams]) -> list[str]:
    """The environments a trained model is deployed to by default: every one but the edge
    ones, which take bundles (`modelops release deploy --bundle`)."""
    return [
        name
        for name, environment in params_environments.items()
        if not isinstance(environment, EdgeEnvironmentParams)
    ]


def refuse_edge(params_environments: Mapping[str, EnvironmentParams], names: list[str]) -> None:
    """A trained model's directory cannot go to devices: they download a bundle.

    Raises:
        DeployError: one of `names` is an edge environment, with the command that deploys it.
    """
    edge = [name for name in names if name not in model_environments(params_environments)]
    if edge:
        raise DeployError(
            f"{', '.join(edge)}: edge environment(s) take a bundle, not a model directory: "
            f"modelops export builds one, then modelops release deploy --env {edge[0]} "
            "--bundle PATH.tar.gz"
        )
