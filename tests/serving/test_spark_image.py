"""The Spark image (serving/Dockerfile.spark) and its entrypoint (serving/spark-entrypoint.sh).

There is no Docker engine on these machines, so the image is never built here, and no Kubernetes:
what is checked is what the image is made of. The Dockerfile is read for the facts the pods
depend on (the project's Python, the lock's pyspark, which is the `spark.version` params.yaml
renders, the application file at the path spark-operator is told, the uid the pods run as). The
entrypoint runs for real: once with a stub `spark-submit` and `java` on PATH, scripts that print
the arguments they were given, to check the command lines it builds from what Spark on
Kubernetes passes a driver or an executor pod; and once with the locked pyspark's own
spark-submit and jars and this machine's Java, the image's layout rebuilt in a temporary folder
(only the cluster is missing: the executor has no driver to reach).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from modelops.params.batch import SparkParams
from modelops.params.deploy import DeployParams
from tests.serving.conftest import SERVING_BIN, SERVING_DIR
from tests.serving.dockerfile import DOCKERFILE as SERVING_DOCKERFILE
from tests.support import REPO_ROOT, tool_or_skip

DOCKERFILE = SERVING_DIR / "Dockerfile.spark"
ENTRYPOINT = SERVING_DIR / "spark-entrypoint.sh"
SERVING_VENV = SERVING_DIR / ".venv"
IMAGE_VENV = "/app/.venv"
EXECUTOR_BACKEND = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
PYTHON_RUNNER = "org.apache.spark.deploy.PythonRunner"
BLOCKED = 64
"""The entrypoint's exit code when a pod lacks what Spark always gives it."""


# --- reading the Dockerfile -------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, arguments = line.partition(" ")
            found.append((name.upper(), " ".join(arguments.split())))
    return found


INSTRUCTIONS = _instructions(DOCKERFILE.read_text())


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for name, arguments in INSTRUCTIONS:
        if name == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((name, arguments))
    return stages


BUILD, RUNTIME = _stages()


def _arguments(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == name]


def _arg_default(name: str) -> str:
    """A build argument's default, from the instructions before the first FROM or in a stage."""
    for instruction, arguments in INSTRUCTIONS:
        if instruction == "ARG" and arguments.startswith(f"{name}="):
            return arguments.partition("=")[2]
    raise AssertionError(f"Dockerfile.spark has no ARG {name}=<default>")


def _image_environment() -> dict[str, str]:
    """What the runtime stage's ENV instructions set, `$PATH` left as written."""
    environment: dict[str, str] = {}
    for arguments in _arguments(RUNTIME, "ENV"):
        for assignment in arguments.split():
            key, _, value = assignment.partition("=")
            environment[key] = value
    return environment


def _copies_into_runtime() -> dict[str, str]:
    """Image path -> build-context path (serving/) of each runtime COPY from the context."""
    copies = {}
    for arguments in _arguments(RUNTIME, "COPY"):
        words = [word for word in arguments.split() if not word.startswith("--chmod")]
        if any(word.startswith("--from") for word in words):
            continue
        source, destination = words
        copies[destination] = source
    return copies


def _locked(package: str) -> str:
    lock = tomllib.loads((SERVING_DIR / "uv.lock").read_text())
    (version,) = [p["version"] for p in lock["package"] if p["name"] == package]
    return str(version)


# --- what the image is made of ----------------------------------------------------------------


def test_the_image_has_the_projects_python_on_the_serving_images_base() -> None:
    base = _arg_default("PYTHON_IMAGE")
    serving_base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", SERVING_DOCKERFILE, re.M)
    assert serving_base
    assert base == serving_base[1], "one base image, one digest: move both"
    python = re.fullmatch(r"python:(\d+\.\d+)-[\w.-]+@sha256:[0-9a-f]{64}", base)
    assert python, f"a python image pinned by digest, got {base}"
    for pyproject in (REPO_ROOT / "pyproject.toml", SERVING_DIR / "pyproject.toml"):
        required = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
        assert required == f"=={python[1]}.*", f"{pyproject}: {required}, the image {python[1]}"
    assert [arguments for name, arguments in INSTRUCTIONS if name == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]
    spark_home = _image_environment()["SPARK_HOME"]
    assert spark_home == f"{IMAGE_VENV}/lib/python{python[1]}/site-packages/pyspark"


def test_the_image_installs_the_locked_pyspark_whose_version_params_render() -> None:
    pyproject = tomllib.loads((SERVING_DIR / "pyproject.toml").read_text())
    (pin,) = pyproject["dependency-groups"]["spark"]
    locked = _locked("pyspark")
    assert pin == f"pyspark=={locked}", "the spark group pins the version the lock holds"
    syncs = [arguments for arguments in _arguments(BUILD, "RUN") if arguments.startswith("uv ")]
    assert len(syncs) == 2, syncs
    for sync in syncs:
        assert sync.startswith("uv sync --frozen "), f"only the lock is installed: {sync}"
        assert "--group spark" in sync, f"pyspark is in the spark group: {sync}"
        assert "--no-editable" in sync, "the runtime stage copies only .venv"
    everything = DOCKERFILE.read_text()
    assert "pip install pyspark" not in everything
    assert "uv pip" not in everything
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv
    assert f"uv=={makefile_uv[1]}" in everything
    assert SparkParams().version == locked, (
        f"spark.version defaults to {SparkParams().version}, the image carries Spark {locked}"
    )


def test_main_application_file_is_score_cli_alone_in_its_folder() -> None:
    application = SparkParams().main_application_file.removeprefix("local://")
    copies = _copies_into_runtime()
    assert copies.get(application) == "modelops_serving/score_cli.py", copies
    assert (SERVING_DIR / copies[application]).is_file()
    folder = application.rsplit("/", 1)[0]
    beside = [path for path in copies if path != application and path.startswith(f"{folder}/")]
    assert not beside, f"{folder} is first on the script's path: only the script goes there"
    text = (SERVING_DIR / "modelops_serving" / "score_cli.py").read_text()
    assert 'if __name__ == "__main__":\n    sys.exit(main())' in text, "Spark runs it as a script"


def test_the_build_context_leaves_out_the_local_environment() -> None:
    # `make spark-image` sends serving/ to the builder: not serving/.venv, over 1 GB with pyspark.
    ignored = (SERVING_DIR / ".dockerignore").read_text().splitlines()
    assert ".venv/" in ignored


def test_the_pods_run_as_deploy_run_as_user() -> None:
    user = DeployParams.model_fields["run_as_user"].default
    group = DeployParams.model_fields["run_as_group"].default
    assert _arg_default("RUN_AS_USER") == str(user)
    assert _arg_default("RUN_AS_GROUP") == str(group)
    assert _arguments(RUNTIME, "USER") == ["${RUN_AS_USER}:${RUN_AS_GROUP}"]
    (accounts,) = [a for a in _arguments(RUNTIME, "RUN") if "useradd" in a]
    assert "groupadd --system --gid ${RUN_AS_GROUP} " in accounts
    assert "useradd --system --uid ${RUN_AS_USER} --gid ${RUN_AS_GROUP} " in accounts


def test_the_entrypoint_is_tini_then_the_script() -> None:
    (entrypoint,) = _arguments(RUNTIME, "ENTRYPOINT")
    command = json.loads(entrypoint)
    assert command[:3] == ["/usr/bin/tini", "-g", "--"]
    assert ("COPY", f"--chmod=0755 {ENTRYPOINT.name} {command[3]}") in RUNTIME
    (packages,) = [a for a in _arguments(RUNTIME, "RUN") if "apt-get install" in a]
    assert {"openjdk-17-jre-headless", "tini"} <= set(packages.split())
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR, "git keeps it executable"
    checked = subprocess.run(["bash", "-n", ENTRYPOINT], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# --- the entrypoint with stub spark-submit and java -------------------------------------------

STUB = '#!/bin/sh\nprintf "%s\\0" "$0" "$@" > "$STUB_LOG"\n'
DRIVER_ARGUMENTS = [
    "--properties-file",
    "/opt/spark/conf/spark.properties",
    "--class",
    PYTHON_RUNNER,
    "local:///app/modelops_serving/score_cli.py",
    "--model",
    "/mnt/models",
    "--input",
    "/mnt/input/day=2026-12-05 copy",
    "--engine",
    "spark",
]
EXECUTOR_ENVIRONMENT = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@churn-nightly-driver-svc.churn-batch.svc:7078",
    "SPARK_EXECUTOR_ID": "3",
    "SPARK_EXECUTOR_CORES": "2",
    "SPARK_EXECUTOR_MEMORY": "4505m",
    "SPARK_APPLICATION_ID": "spark-0123abcd",
    "SPARK_EXECUTOR_POD_IP": "10.2.0.7",
    "SPARK_EXECUTOR_POD_NAME": "churn-nightly-0123-exec-3",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_CONF_DIR": "/opt/spark/conf",
    "SPARK_CLASSPATH": "/opt/extra/*",
    # Twelve options, so that text order (10 before 2) and number order differ.
    **{f"SPARK_JAVA_OPT_{n}": f"-Dspark.option{n}=value {n}" for n in range(12)},
}


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A folder with stub `spark-submit` and `java` that log their argv (NUL-separated)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("spark-submit", "java"):
        (folder / name).write_text(STUB)
        (folder / name).chmod(0o755)
    return folder


def _entrypoint(
    arguments: list[str], environment: dict[str, str], stubs: Path
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = stubs.parent / "argv"
    log.unlink(missing_ok=True)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "STUB_LOG": str(log), **environment}
    done = subprocess.run(
        [ENTRYPOINT, *arguments], env=env, capture_output=True, text=True, timeout=30
    )
    argv = log.read_text().split("\0")[:-1] if log.exists() else []
    return done, argv


def test_a_driver_pod_runs_spark_submit_in_client_mode_on_the_pods_address(stubs: Path) -> None:
    done, argv = _entrypoint(
        ["driver", *DRIVER_ARGUMENTS], {"SPARK_DRIVER_BIND_ADDRESS": "10.2.0.5"}, stubs
    )
    assert done.returncode == 0, done.stderr
    assert argv == [
        str(stubs / "spark-submit"),
        "--deploy-mode",
        "client",
        "--conf",
        "spark.driver.bindAddress=10.2.0.5",
        *DRIVER_ARGUMENTS,
    ]


def test_an_executor_pod_runs_the_kubernetes_executor_backend(stubs: Path, tmp_path: Path) -> None:
    spark_home = tmp_path / "pyspark"
    done, argv = _entrypoint(
        ["executor"], {**EXECUTOR_ENVIRONMENT, "SPARK_HOME": str(spark_home)}, stubs
    )
    assert done.returncode == 0, done.stderr
    assert argv == [
        str(stubs / "java"),
        *(f"-Dspark.option{n}=value {n}" for n in range(12)),
        "-Xms4505m",
        "-Xmx4505m",
        "-cp",
        f"/opt/spark/conf:/opt/extra/*:{spark_home}/jars/*",
        EXECUTOR_BACKEND,
        "--driver-url",
        EXECUTOR_ENVIRONMENT["SPARK_DRIVER_URL"],
        "--executor-id",
        "3",
        "--cores",
        "2",
        "--app-id",
        "spark-0123abcd",
        "--hostname",
        "10.2.0.7",
        "--resourceProfileId",
        "0",
        "--podName",
        "churn-nightly-0123-exec-3",
    ]


def test_java_home_wins_over_path(stubs: Path, tmp_path: Path) -> None:
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    shutil.copy(stubs / "java", java_home / "bin" / "java")
    environment = {**EXECUTOR_ENVIRONMENT, "SPARK_HOME": "/spark", "JAVA_HOME": str(java_home)}
    done, argv = _entrypoint(["executor"], environment, stubs)
    assert done.returncode == 0, done.stderr
    assert argv[0] == str(java_home / "bin" / "java")


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [
        (["driver", *DRIVER_ARGUMENTS], "SPARK_DRIVER_BIND_ADDRESS"),
        (["executor"], "SPARK_HOME"),
        (["executor"], "SPARK_DRIVER_URL"),
        (["executor"], "SPARK_EXECUTOR_MEMORY"),
    ],
)
def test_a_pod_without_what_spark_sets_is_refused_naming_it(
    arguments: list[str], missing: str, stubs: Path
) -> None:
    environment = {
        **EXECUTOR_ENVIRONMENT,
        "SPARK_HOME": "/spark",
        "SPARK_DRIVER_BIND_ADDRESS": "10.2.0.5",
    }
    environment.pop(missing)
    done, argv = _entrypoint(arguments, environment, stubs)
    assert (done.returncode, argv) == (BLOCKED, [])
    assert f"{missing} is not set" in done.stderr


def test_any_other_command_runs_as_given_and_none_is_refused(stubs: Path) -> None:
    done, argv = _entrypoint(["java", "-version"], {}, stubs)
    assert (done.returncode, argv) == (0, [str(stubs / "java"), "-version"])
    done, argv = _entrypoint([], {}, stubs)
    assert (done.returncode, argv) == (BLOCKED, [])
    assert "give a mode" in done.stderr


def test_a_uid_without_a_name_is_warned_about(stubs: Path) -> None:
    (stubs / "getent").write_text("#!/bin/sh\nexit 2\n")
    (stubs / "getent").chmod(0o755)
    done, argv = _entrypoint(["driver"], {"SPARK_DRIVER_BIND_ADDRESS": "10.2.0.5"}, stubs)
    assert (done.returncode, argv[0]) == (0, str(stubs / "spark-submit"))
    assert "has no entry in /etc/passwd" in done.stderr
    assert "--build-arg RUN_AS_USER=" in done.stderr


# --- the entrypoint with the locked pyspark and this machine's Java ---------------------------


@pytest.fixture(scope="module")
def spark_home() -> Path:
    """The locked pyspark's folder in serving/.venv (`make install-spark` if missing)."""
    tool_or_skip("java", install="Java 17+: apt-get install default-jre-headless")
    probe = [str(SERVING_BIN / "python"), "-c", "import pyspark; print(pyspark.__file__)"]
    if subprocess.run(probe, capture_output=True).returncode:
        done = subprocess.run(
            ["make", "install-spark"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"make install-spark failed:\n{done.stdout}\n{done.stderr}"
    found = subprocess.run(probe, capture_output=True, text=True, check=True)
    return Path(found.stdout.strip()).parent


@pytest.fixture(scope="module")
def image_environment(spark_home: Path) -> dict[str, str]:
    """The runtime stage's ENV with this checkout's serving/.venv where the image has /app/.venv,
    and Java from this machine."""
    environment = {
        key: value.replace(IMAGE_VENV, str(SERVING_VENV)).replace("$PATH", "/usr/bin:/bin")
        for key, value in _image_environment().items()
    }
    assert Path(environment["SPARK_HOME"]) == spark_home, "the image's SPARK_HOME is pyspark's"
    java = shutil.which("java")
    assert java
    environment["PATH"] += f":{Path(java).parent}"
    return environment


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime stage's COPY lines from the build context, done under a temporary root."""
    root = tmp_path_factory.mktemp("image")
    for destination, source in _copies_into_runtime().items():
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SERVING_DIR / source, target)
    return root


def test_the_main_application_files_folder_lets_pyspark_import(
    image_layout: Path, spark_home: Path
) -> None:
    # Python puts a script's folder first on sys.path, as here. The package's own folder would
    # not do: its profile.py stands in for the standard library's, which pyspark imports.
    application = SparkParams().main_application_file.removeprefix("local:///")
    importing = "import sys; sys.path.insert(0, sys.argv[1]); import pyspark.sql"
    folders = {(image_layout / application).parent: True, SERVING_DIR / "modelops_serving": False}
    for folder, imports in folders.items():
        done = subprocess.run(
            [SERVING_BIN / "python", "-c", importing, folder], capture_output=True, text=True
        )
        assert (done.returncode == 0) == imports, f"{folder}:\n{done.stderr[-2000:]}"


def test_a_driver_runs_the_main_application_file_with_the_locked_spark_submit(
    image_layout: Path,
    image_environment: dict[str, str],
    tmp_path: Path,
    model_dir: Path,
    served_project: Path,
) -> None:
    # spark-submit's master (here from its properties file, as spark-operator passes it) is
    # the session's: modelops-score is given no --master, and must not fall back to local[*].
    properties = tmp_path / "spark.properties"
    properties.write_text(
        "spark.master=local[1]\nspark.app.name=entrypoint\n"
        "spark.driver.host=127.0.0.1\nspark.ui.enabled=false\n"
    )
    application = image_layout / SparkParams().main_application_file.removeprefix("local:///")
    arguments = [
        "--properties-file",
        str(properties),
        "--class",
        PYTHON_RUNNER,
        f"local://{application}",
    ]
    scoring = [
        *("--engine", "spark", "--model", str(model_dir)),
        *("--input", str(served_project / "data" / "prepared" / "test.parquet")),
        *("--output", str(tmp_path / "scores")),
    ]
    done = subprocess.run(
        [ENTRYPOINT, "driver", *arguments, *scoring],
        env={
            **image_environment,
            "SPARK_DRIVER_BIND_ADDRESS": "127.0.0.1",
            "PYSPARK_PYTHON": str(SERVING_BIN / "python"),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "600 rows scored" in done.stdout, done.stdout
    record = json.loads((tmp_path / "scores" / "_run.json").read_text())
    assert record["spark"]["master"] == "local[1]", "spark-submit's master, not local[*]"


def test_an_executor_starts_with_the_locked_jars_and_looks_for_its_driver(
    image_environment: dict[str, str], tmp_path: Path
) -> None:
    # A closed port stands in for the driver: the backend class loads from SPARK_HOME/jars, takes
    # every option the entrypoint gives it, and fails only where a cluster would answer.
    environment = {
        **image_environment,
        **EXECUTOR_ENVIRONMENT,
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@127.0.0.1:1",
        "SPARK_EXECUTOR_POD_IP": "127.0.0.1",
        "SPARK_EXECUTOR_MEMORY": "256m",
        "SPARK_CONF_DIR": str(tmp_path),
        "SPARK_CLASSPATH": "",
    }
    for n in range(12):
        environment.pop(f"SPARK_JAVA_OPT_{n}")
    # What Spark passes every executor on Java 17: JVM options, which the JVM checks.
    environment["SPARK_JAVA_OPT_0"] = "-XX:+IgnoreUnrecognizedVMOptions"
    environment["SPARK_JAVA_OPT_1"] = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"
    done = subprocess.run(
        [ENTRYPOINT, "executor"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    for refusal in ("Unrecognized option", "ClassNotFoundException", "Could not "):
        assert refusal not in output, output[-3000:]
    assert "Failed to connect to /127.0.0.1:1" in output, output[-3000:]
