"""Requests that carry credentials: a redirect to another origin is refused, never followed.

urllib follows redirects and copies every header of the request, the `Authorization` header
included, so a Prometheus or GitHub answer of `302 Location: https://elsewhere/` would hand the
token to elsewhere. Here a redirect within the same origin (scheme, host and port) is followed
as usual; one to another origin fails with the address it named.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPMessage, HTTPResponse
from typing import IO


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if origin(target) != origin(req.full_url):
            raise urllib.error.URLError(
                f"refused a redirect to another origin ({target}): the request carries "
                "credentials, which go to the address configured and nowhere else"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def open_authorized(request: urllib.request.Request, *, timeout: float) -> HTTPResponse:
    """`urllib.request.urlopen`, following redirects only within the request's own origin.

    Raises:
        urllib.error.HTTPError: an error answer.
        urllib.error.URLError: the server cannot be reached, or it redirected to another origin
            (the reason names the address).
    """
    answer: HTTPResponse = _OPENER.open(request, timeout=timeout)
    return answer
