"""Names of the official SDK's server-side custom-loss API (alpha), kept for imports.

tinkex computes custom losses client-side (``TrainingClient.forward_backward_custom``);
``ServiceClient.create_custom_loss`` raises ``NotImplementedError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["LossHandle", "PerDatumLossFn"]

#: ``(logprobs, *inputs) -> (loss, {"custom/name:sum": tensor})``, run per datum.
PerDatumLossFn = Callable[..., tuple[Any, dict[str, Any]]]


@attrs.frozen
class LossHandle:
    """A custom loss registered on the server (not created by tinkex; see module docstring)."""

    name: str
    inputs: tuple[Any, ...]
    session_id: str
    graph: Any = None
    loss_id: str | None = None

    @property
    def input_names(self) -> tuple[str, ...]:
        """Input names, ``logprobs`` first."""
        return tuple(getattr(i, "name", str(i)) for i in self.inputs)
