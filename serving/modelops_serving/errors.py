"""How the server answers, and logs, a request it does not answer with a prediction.

- A refused request (bad input, unknown path or method, not JSON, body too large, nested too
  deeply: a 4xx) gets seldon-core's error shape with its real status and a message that says
  what is wrong; it is logged at WARNING, since the fault is the client's. Every body is parsed
  once, by `body.loads` (the app's JSON provider), before any view or protobuf sees it.
- Anything else (a bug, a broken model) gets a generic 500 that names an error id; the log has
  that id and the full traceback, and the client never sees exception text.
- On the Open Inference Protocol's paths (`/v2/...`) the same refusals and 500s take that
  protocol's shape, `{"error": "<message>"}`; a POST there may leave out its Content-Type (as
  Triton's clients do), and binary tensor data (Triton's extension) is refused with the fix.

`blueprint` is what `ModelServer.model_error_handler` gives seldon-core to register. seldon-core
then registers its own handlers for `Exception` and `SeldonMicroserviceException`, which would
replace ours: they log every 4xx at ERROR and send exception text to the client. `install`
registers ours again, after seldon-core's; `modelops_serving.microservice` calls it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from seldon_core.flask_utils import SeldonMicroserviceException
from werkzeug.exceptions import BadRequest, HTTPException

from modelops_serving import body, quote, v2
from modelops_serving.validation import RequestError

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "MICROSERVICE_INTERNAL_ERROR"
OUTCOME = "modelops_outcome"
"""Where a refusal leaves its reason (on `flask.g`) for the request counters (`telemetry`)."""
# The outcome of a refusal that is not a RequestError, by status.
_HTTP_OUTCOMES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "not_json",
}
# seldon-core's own refusals: a body that is JSON but not a Seldon message of the right form
# (for feedback, `json_format` cannot parse it into a Feedback message).
SELDON_REFUSAL = "invalid_message"
_REASONS = {
    400: "MICROSERVICE_BAD_DATA",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class StrictJSON(DefaultJSONProvider):
    """Flask's JSON, parsing with `body.loads`: nesting and integers checked first."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return body.loads(s)


def blueprint(max_body_bytes: int, *, max_rows: int) -> Blueprint:
    """Caps the body, requires JSON on every POST, and answers refusals with their own status.

    `max_body_bytes` is checked against Content-Length before the body is read (a chunked body
    is read up to it, no further). seldon-core's catch-all handler would turn a 413, 404 or 405
    into a 500.
    """
    errors = Blueprint("modelops_errors", __name__)
    too_large = body.too_large(max_body_bytes, max_rows=max_rows)

    def limit_body(state: Any) -> None:
        state.app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
        state.app.json = StrictJSON(state.app)

    errors.record_once(limit_body)

    @errors.before_app_request
    def require_json() -> None:
        # seldon-core answers an unparseable body with "Can't find JSON in data", and with a 500
        # for bad JSON in its `json` form field or query argument: say why, with a 4xx. Nesting
        # and integers are refused by `body.loads` itself, with their own reasons.
        posted = request.method == "POST"
        form_json = request.args.get("json") or (request.form.get("json") if posted else None)
        if not form_json and not posted:
            return
        # Triton's clients send no Content-Type; their binary extension is not JSON at all.
        untyped = v2.is_v2(request.path) and not request.content_type
        if posted and v2.is_v2(request.path) and v2.BINARY_HEADER in request.headers:
            raise RequestError(
                f"binary tensor data ({v2.BINARY_HEADER}) is not supported: send every tensor "
                "in the JSON body (tritonclient: set_data_from_numpy(..., binary_data=False))",
                status=415,
                reason="not_json",
            )
        if not form_json and not (request.is_json or untyped):
            raise RequestError(
                "send the body as JSON, with Content-Type: application/json",
                status=415,
                reason="not_json",
            )
        try:
            if form_json:
                body.loads(form_json)
            else:
                request.get_json(force=untyped)
        except (BadRequest, ValueError) as exc:
            # A chunked body (no Content-Length) is cut at the limit, which breaks its JSON.
            if request.content_length is None and len(request.get_data()) >= max_body_bytes:
                raise RequestError(too_large, status=413, reason="body_too_large") from None
            source = "the 'json' parameter" if form_json else "the body"
            raise RequestError(_not_json(exc, source), reason="bad_json") from None

    @errors.app_errorhandler(RequestError)
    def refused(error: RequestError) -> Response:
        setattr(g, OUTCOME, error.reason)
        return _refused(error.status, error.message, _REASONS.get(error.status))

    @errors.app_errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = error.code or 500
        if code >= 500:
            return unexpected(error)
        message = error.description or error.name
        if code == 413:
            message = too_large
        setattr(g, OUTCOME, _HTTP_OUTCOMES.get(code, f"http_{code}"))
        return _refused(code, message, _REASONS.get(code))

    return errors


def install(app: Flask) -> None:
    """Replace seldon-core's handlers for `Exception` and `SeldonMicroserviceException`."""
    app.register_error_handler(SeldonMicroserviceException, seldon_error)
    app.register_error_handler(Exception, unexpected)


def seldon_error(error: SeldonMicroserviceException) -> Response:
    """An error seldon-core raised itself (or a model raised in its form), with its status."""
    status = int(error.status_code)
    message = quote.capped(str(error.message))
    if status < 500:
        setattr(g, OUTCOME, SELDON_REFUSAL)
        return _refused(status, message, error.reason)
    logger.error("%s: %d %s", _where(), status, message)
    return _answer(status, message, error.reason)


def unexpected(error: BaseException) -> Response:
    """A generic 500 with an error id; the log gets the id and the traceback."""
    error_id = secrets.token_hex(6)
    logger.error("error %s answering %s %s", error_id, request.method, request.path, exc_info=error)
    message = f"internal error {error_id}: the server could not answer; its log has the details"
    return _answer(500, message, INTERNAL_ERROR)


def _not_json(error: Exception, source: str) -> str:
    # Flask 2.3 replaces the decoder's message (the line and column) by a generic one.
    cause = error.__cause__ if isinstance(error.__cause__, BadRequest) else error
    detail = cause.description if isinstance(cause, BadRequest) else str(cause)
    return f"{source} is not valid JSON ({detail})"


def _refused(status: int, message: str, reason: str | None) -> Response:
    logger.warning("refused %s: %d %s", _where(), status, message)
    return _answer(status, message, reason)


def _where() -> str:
    """The request's method and path, as safe to log as a quoted value (the path is the
    client's, percent-decoded)."""
    return f"{request.method} {quote.capped(request.path)}"


def _answer(status: int, message: str, reason: str | None) -> Response:
    """seldon-core's error shape, with the real HTTP status in `code` too; the Open Inference
    Protocol's on its paths."""
    if v2.is_v2(request.path):
        response = jsonify({"error": message})
        response.status_code = status
        return response
    response = jsonify(
        {
            "status": {
                "status": 1,
                "info": message,
                "code": status,
                "reason": reason or "MICROSERVICE_ERROR",
            }
        }
    )
    response.status_code = status
    return response
