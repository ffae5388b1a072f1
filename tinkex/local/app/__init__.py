"""The Tinker API of the local server, Starlette-style.

* :mod:`.state`: :class:`ServerState` (everything the server knows) and :class:`AppOptions`.
* :mod:`.base_models`: the base-model names served (and the error for any other).
* :mod:`.routing`: the route table and :class:`Call` (what a handler receives).
* :mod:`.middleware`: request ids, auth, fault injection, idempotency cache, error mapping.
* :mod:`.parsing`: request bodies -> SDK request types (the SDK converter's ``from_wire``).
* :mod:`.handlers`: one module per resource group (config, sessions, training, sampling,
  futures, checkpoints).
* :mod:`.application`: :class:`App`, which puts them together.
"""

from __future__ import annotations

from tinkex.local.app.application import App
from tinkex.local.app.base_models import SUPPORTED_MODELS
from tinkex.local.app.state import AppOptions, ServerState

__all__ = ["SUPPORTED_MODELS", "App", "AppOptions", "ServerState"]
