"""`modelops-microservice`: seldon-core's `seldon-core-microservice`, with eight changes.

1. **Bind host.** seldon-core 1.17 binds its REST server, metrics server and gRPC server to
   0.0.0.0, so `make serve` on a laptop would answer the whole network. Here they bind to
   `--host` (or `MODELOPS_BIND_HOST`), 127.0.0.1 unless told otherwise; the image sets 0.0.0.0,
   since in a pod the Seldon executor and Prometheus connect from outside the container.
   seldon-core's reservation of the gRPC port (a socket bound to all addresses that never
   listens) is left as it is; its `--debug` mode (Flask's development server, on 0.0.0.0) is
   refused. gunicorn's control socket is turned off: gunicorn 27 opens one
   by default, at one path under $HOME that both gunicorn masters would fight over.
2. **Error handlers.** seldon-core registers handlers that log 4xx at ERROR and send exception
   text to clients; `errors.install` replaces them once seldon-core has built its app.
3. **Stopping.** seldon-core's main process stops the REST server on SIGTERM or SIGINT but
   then waits forever for the gRPC server, which nobody told to stop. When the REST server has
   stopped, this process signals its whole process group (the metrics and gRPC servers, the
   metrics manager) to stop too, if it leads that group: as a container's first process, and
   under `python -m modelops_serving.cli serve` and `launch.Server`, it does.
4. **Telemetry.** prometheus_client runs in multiprocess mode: each worker writes its metrics to
   memory-mapped files in one directory, and seldon-core's metrics server (`/prometheus`, and
   seldon-core's own `/metrics` path) answers with seldon-core's metrics plus everything in
   those files (`modelops_serving.telemetry`). prometheus_client 0.8 (seldon-core pins <0.9)
   reads the directory from `prometheus_multiproc_dir` (lowercase) and chooses its value class
   once, when it is first imported: so this command sets it before importing seldon-core,
   to a fresh temporary directory removed when the command ends, unless one is given.
5. **Feedback without protobuf.** seldon-core converts a feedback body to a protobuf message
   with the pure-Python `json_format` and back, about 0.35 ms a row and a 500 on deep nesting
   or a huge integer; the REST feedback endpoint calls the model's `feedback` with the parsed
   JSON instead (`_feedback_view`), and records Seldon's reward metric as seldon-core does.
6. **No gRPC server** unless `--grpc-workers` or `GRPC_WORKERS` asks for one: the executor
   calls the model over REST, and seldon-core's gRPC server parsed network protobuf with the
   pure-Python parser before any check of ours (`_without_grpc_unless_asked`).
7. **The Open Inference Protocol** (`/v2/...`) beside Seldon's, for a model with an `infer`
   method (`modelops_serving.v2_http`): KServe's, Triton's and MLServer's clients call it.
8. **Workers end at once.** A gunicorn worker runs its atexit handlers and leaves with its
   exit code, without tearing its interpreter down (`_end_worker`): half a second of CPU per
   worker per stop.

Everything else is seldon-core's own `main`, with the remaining arguments.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from modelops_serving.launch import BIND_HOST_ENV, LOOPBACK

# Nothing here imports seldon-core or prometheus_client at module level: the directory must be
# in the environment before prometheus_client's first import (see `_metrics_directory`).
MULTIPROC_ENV = "prometheus_multiproc_dir"
"""What prometheus_client 0.8 reads (0.10 and later read PROMETHEUS_MULTIPROC_DIR)."""
MULTIPROC_ENV_LATER = "PROMETHEUS_MULTIPROC_DIR"
FEEDBACK_VIEW = "SendFeedback"
"""The endpoint of seldon-core 1.17's feedback routes (`wrapper.get_rest_microservice`)."""
GRPC_WORKERS_ENV = "GRPC_WORKERS"
"""seldon-core's own setting; unset here means no gRPC server (`_without_grpc_unless_asked`)."""
PROMETHEUS_PATH = "/prometheus"
"""Where Seldon's operator (PREDICTIVE_UNIT_METRICS_ENDPOINT) and our PodMonitor scrape."""

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """Run seldon-core's microservice bound to one host; arguments as `seldon-core-microservice`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default=os.environ.get(BIND_HOST_ENV) or LOOPBACK)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if "--debug" in rest or os.environ.get("SELDON_DEBUG", "").lower() in ("1", "true", "t"):
        sys.exit(
            "modelops-microservice: --debug (SELDON_DEBUG) runs Flask's development server on "
            "0.0.0.0; it is not supported here"
        )
    leader = os.getpid()
    created = _metrics_directory()
    try:
        _run(args.host, _without_grpc_unless_asked(rest))
    except SystemExit as ended:
        if os.getpid() != leader:
            _end_worker(ended)
        raise
    finally:
        # gunicorn workers are forks of this process and unwind through this frame as they
        # exit: only the process that started here may stop the group.
        if os.getpid() == leader:
            if os.getpgrp() == leader:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                os.killpg(leader, signal.SIGTERM)
            if created:
                shutil.rmtree(created, ignore_errors=True)


def _end_worker(ended: SystemExit) -> NoReturn:
    """End a gunicorn worker (a fork of this process) as `sys.exit` would, but without tearing
    its interpreter down.

    Its exit code, its atexit handlers (the telemetry's last write, logging's flush) and its
    buffered output stay. The teardown touched every page the worker shared with the master,
    which the kernel then copied: half a second of CPU per worker at every stop, for nothing a
    worker keeps.
    """
    code = ended.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _without_grpc_unless_asked(rest: list[str]) -> list[str]:
    """No gRPC server unless `--grpc-workers` or GRPC_WORKERS asks for one.

    The Seldon executor calls the model over REST (a SeldonDeployment's `transport` defaults to
    `rest`), so seldon-core's gRPC server only parsed protobuf from the network with the
    pure-Python parser (protobuf 3.20.3, CVE-2025-4565), before any check of ours, and loaded
    the model once more in its own process.
    """
    asked = any(arg.split("=")[0] == "--grpc-workers" for arg in rest)
    return rest if asked or os.environ.get(GRPC_WORKERS_ENV) else [*rest, "--grpc-workers", "0"]


def _metrics_directory() -> str:
    """Point prometheus_client at a metrics directory; return it if this call created it.

    A directory already given (either variable) is used as it is: the caller owns it and
    should empty it between starts, as prometheus_client's documentation says.
    """
    given = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV_LATER)
    if "prometheus_client" in sys.modules:
        logger.warning("prometheus_client was imported before its multiprocess directory was set")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = os.environ[MULTIPROC_ENV_LATER] = given
        return ""
    created = tempfile.mkdtemp(prefix="modelops-metrics-")
    os.environ[MULTIPROC_ENV] = os.environ[MULTIPROC_ENV_LATER] = created
    return created


def _run(host: str, rest: list[str]) -> None:
    """seldon-core's main, patched; imports seldon-core (and so prometheus_client) only now."""
    from seldon_core import microservice, wrapper

    _bind_to(host)
    wrapper.get_rest_microservice = _with_our_handlers(wrapper.get_rest_microservice)
    wrapper.get_metrics_microservice = _with_our_metrics(wrapper.get_metrics_microservice)
    sys.argv = [sys.argv[0], *rest]
    microservice.main()


def _address(host: str, port: int | str) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_to(host: str) -> None:
    """Make seldon-core's three servers bind to `host` instead of 0.0.0.0."""
    from seldon_core import microservice

    microservice.UserModelApplication = _on_host(microservice.UserModelApplication, host)
    microservice.StandaloneApplication = _on_host(microservice.StandaloneApplication, host)
    run_grpc = microservice._run_grpc_server

    def run_grpc_on_host(*args: Any) -> None:
        *head, bind_address = args
        port = str(bind_address).rpartition(":")[2]
        logger.info("gRPC server binds to %s", _address(host, port))
        run_grpc(*head, _address(host, port))

    microservice._run_grpc_server = run_grpc_on_host


def _on_host(application: type, host: str) -> type:
    """A gunicorn application class whose `bind` option uses `host`, without a control socket."""

    class OnHost(application):  # type: ignore[misc]
        def __init__(self, *args: Any, options: dict[str, Any], **kwargs: Any) -> None:
            port = str(options["bind"]).rpartition(":")[2]
            changed = {**options, "bind": _address(host, port), "control_socket_disable": True}
            super().__init__(*args, options=changed, **kwargs)

    OnHost.__name__ = OnHost.__qualname__ = f"{application.__name__}OnHost"
    return OnHost


def _with_our_handlers(build: Callable[..., Any]) -> Callable[..., Any]:
    """seldon-core's REST app with our error handlers, our feedback view (for a model with a
    `feedback` method), the `/v2` routes (for a model with `infer`) and, when on, the request
    counters."""
    from modelops_serving import errors, telemetry, v2_http

    def build_app(user_model: Any, seldon_metrics: Any, *args: Any, **kwargs: Any) -> Any:
        app = build(user_model, seldon_metrics, *args, **kwargs)
        errors.install(app)
        feedback = getattr(user_model, "feedback", None)
        if callable(feedback):
            app.view_functions[FEEDBACK_VIEW] = _feedback_view(feedback, seldon_metrics)
        if callable(getattr(user_model, "infer", None)):
            v2_http.install(app, user_model)
        recorder = getattr(user_model, "telemetry", None)
        if isinstance(recorder, telemetry.Telemetry):
            telemetry.install(app, recorder)
        return app

    return build_app


def _feedback_view(
    feedback: Callable[[Any], dict[str, Any]], seldon_metrics: Any
) -> Callable[[], Any]:
    """The view of seldon-core's feedback routes: the body as parsed JSON to `feedback`."""
    from flask import jsonify
    from seldon_core.flask_utils import get_request

    def send_feedback() -> Any:
        message = get_request()
        answer = feedback(message)
        # seldon-core's seldon_api_model_feedback(_reward)_total, for counted feedback only.
        seldon_metrics.update_reward(float(message.get("reward") or 0))
        return jsonify(answer)

    return send_feedback


def _with_our_metrics(build: Callable[..., Any]) -> Callable[..., Any]:
    """seldon-core's metrics app, answering seldon-core's metrics and ours, also on /prometheus.

    seldon-core serves its metrics on PREDICTIVE_UNIT_METRICS_ENDPOINT (`/metrics` unless the
    operator sets `/prometheus`); both paths answer the same here.
    """

    def build_app(seldon_metrics: Any) -> Any:
        app = build(_Combined(seldon_metrics))
        served = {rule.rule for rule in app.url_map.iter_rules()}
        if PROMETHEUS_PATH not in served:
            app.add_url_rule(PROMETHEUS_PATH, "modelops_prometheus", app.view_functions["Metrics"])
        return app

    return build_app


class _Combined:
    """Stands for seldon-core's SeldonMetrics in its metrics app: its metrics, then ours."""

    def __init__(self, seldon_metrics: Any) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        self._seldon = seldon_metrics
        self._registry = CollectorRegistry()
        MultiProcessCollector(self._registry, path=os.environ[MULTIPROC_ENV])

    def generate_metrics(self) -> tuple[str, str]:
        from prometheus_client import exposition

        text, mimetype = self._seldon.generate_metrics()
        ours = exposition.generate_latest(self._registry).decode("utf-8")
        return str(text) + ours, str(mimetype)


if __name__ == "__main__":
    main()
