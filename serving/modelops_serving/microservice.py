"""`modelops-microservice`: seldon-core's `seldon-core-microservice`, with three changes.

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

Everything else is seldon-core's own `main`, with the remaining arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from seldon_core import microservice, wrapper
from seldon_core.utils import getenv_as_bool

from modelops_serving import errors
from modelops_serving.launch import BIND_HOST_ENV, LOOPBACK

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """Run seldon-core's microservice bound to one host; arguments as `seldon-core-microservice`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default=os.environ.get(BIND_HOST_ENV) or LOOPBACK)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if "--debug" in rest or getenv_as_bool(microservice.DEBUG_ENV, default=False):
        sys.exit(
            "modelops-microservice: --debug (SELDON_DEBUG) runs Flask's development server on "
            "0.0.0.0; it is not supported here"
        )
    _bind_to(args.host)
    wrapper.get_rest_microservice = _with_our_error_handlers(wrapper.get_rest_microservice)
    sys.argv = [sys.argv[0], *rest]
    leader = os.getpid()
    try:
        microservice.main()
    finally:
        # gunicorn workers are forks of this process and unwind through this frame as they
        # exit: only the process that started here may stop the group.
        if os.getpid() == leader and os.getpgrp() == leader:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(leader, signal.SIGTERM)


def _address(host: str, port: int | str) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_to(host: str) -> None:
    """Make seldon-core's three servers bind to `host` instead of 0.0.0.0."""
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


def _with_our_error_handlers(build: Callable[..., Any]) -> Callable[..., Any]:
    def build_app(*args: Any, **kwargs: Any) -> Any:
        app = build(*args, **kwargs)
        errors.install(app)
        return app

    return build_app


if __name__ == "__main__":
    main()
