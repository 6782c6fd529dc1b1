"""Server errors on purpose (`inject_server_errors`), to rehearse a failing canary.

A share of predictions raises `InjectedError`, which the server answers as any unexpected error
(a 500 with an error id, counted `server_error`). 0, the default, is the only production value.
"""

from __future__ import annotations

import logging
import random

logger = logging.getLogger(__name__)

INJECT_ENV = "MODELOPS_INJECT_SERVER_ERRORS"


class InjectedError(RuntimeError):
    """A server error on purpose (`inject_server_errors`), to rehearse a failing canary."""


class Faults:
    """Fails `share` of the calls to `maybe_fail`, at random."""

    def __init__(self, raw: float | str) -> None:
        """Raises ValueError unless `raw` is a share from 0 to 1."""
        try:
            share = float(raw)
        except ValueError:
            raise ValueError(
                f"inject_server_errors (or ${INJECT_ENV}) must be a share from 0 to 1, got {raw!r}"
            ) from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"inject_server_errors must be from 0 to 1, got {share:g}")
        if share:
            logger.warning(
                "injecting server errors into %.1f%% of predictions (inject_server_errors): a "
                "rehearsal setting, never for real traffic",
                share * 100,
            )
        self.share = share
        self._random = random.Random()

    def maybe_fail(self) -> None:
        if self.share and self._random.random() < self.share:
            raise InjectedError(f"injected server error (inject_server_errors {self.share:g})")
