"""One module per resource group; each lists its endpoints in ``ROUTES``."""

from __future__ import annotations

from tinkex.local.app.handlers import checkpoints, config, futures, sampling, sessions, training
from tinkex.local.app.routing import Route

__all__ = ["ALL_ROUTES"]

#: Every endpoint of the local server.
ALL_ROUTES: tuple[Route, ...] = (
    *config.ROUTES,
    *sessions.ROUTES,
    *training.ROUTES,
    *sampling.ROUTES,
    *futures.ROUTES,
    *checkpoints.ROUTES,
)
