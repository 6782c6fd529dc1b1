"""`modelops-microservice`: seldon-core's `seldon-core-microservice`, with two changes.

1. **Error handlers.** seldon-core registers handlers that log 4xx at ERROR and send exception
   text to clients; `errors.install` replaces them once seldon-core has built its app.
2. **No gunicorn control socket.** gunicorn 27 opens one by default, at one path under $HOME
   that both gunicorn masters (REST and metrics) would fight over; nothing here uses it.

Everything else is seldon-core's own `main`, with the same arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seldon_core import microservice, wrapper

from modelops_serving import errors


def main() -> None:
    """Run seldon-core's microservice; arguments as `seldon-core-microservice`."""
    microservice.UserModelApplication = _without_control_socket(microservice.UserModelApplication)
    microservice.StandaloneApplication = _without_control_socket(microservice.StandaloneApplication)
    wrapper.get_rest_microservice = _with_our_error_handlers(wrapper.get_rest_microservice)
    microservice.main()


def _without_control_socket(application: type) -> type:
    """A gunicorn application class that opens no control socket."""

    class WithoutControlSocket(application):  # type: ignore[misc]
        def __init__(self, *args: Any, options: dict[str, Any], **kwargs: Any) -> None:
            changed = {**options, "control_socket_disable": True}
            super().__init__(*args, options=changed, **kwargs)

    WithoutControlSocket.__name__ = WithoutControlSocket.__qualname__ = application.__name__
    return WithoutControlSocket


def _with_our_error_handlers(build: Callable[..., Any]) -> Callable[..., Any]:
    def build_app(*args: Any, **kwargs: Any) -> Any:
        app = build(*args, **kwargs)
        errors.install(app)
        return app

    return build_app


if __name__ == "__main__":
    main()
