"""The unions of tinkex.types and how a JSON object picks its member (one table for all).

Decoding (``from_wire``), constructor arguments given as dicts (``ModelInput(chunks=[{...}])``)
and ``model_validate`` all read the member class from here, by the object's discriminator key.
The tables name their classes, so looking one up imports only the module of that union.
"""

from __future__ import annotations

import functools
import importlib
import typing
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["UnionTable", "union_table", "union_tables"]


@attrs.frozen
class UnionTable:
    """``key`` names the discriminator field; ``classes`` maps its values to member classes;
    ``default`` is used when the key is unknown, ``missing`` (else ``default``) when the object
    has no such key (None: that is an error)."""

    union: Any
    key: str
    classes: dict[str, type]
    default: type | None = None
    missing: type | None = None
    #: tinker declares it a pydantic discriminated union (its schema is ``oneOf``).
    declared: bool = False

    def class_for(self, data: Mapping[str, Any]) -> type | None:
        """The member class of the JSON object ``data``; None when it has no discriminator
        and the union has no class for that (the caller tries the members in order)."""
        tag = data.get(self.key)
        cls = self.classes.get(tag) if isinstance(tag, str) else None
        if cls is not None:
            return cls
        if tag is None and self.missing is not None:
            return self.missing
        if tag is None and not self.declared:
            return None
        if self.default is not None:
            return self.default
        from tinkex.types._coerce import Invalid

        raise Invalid(f"expected {self.key!r} to be one of {sorted(self.classes)}", tag)


@attrs.frozen
class _Spec:
    union: str
    key: str
    classes: dict[str, str]
    default: str | None = None
    missing: str | None = None
    declared: bool = False


# module -> its unions: the union alias, the discriminator key, tag -> class (names)
_SPECS: dict[str, tuple[_Spec, ...]] = {
    "tinkex.types._model_input": (
        _Spec(
            "ModelInputChunk",
            "type",
            {
                "encoded_text": "EncodedTextChunk",
                "image": "ImageChunk",
                "image_asset_pointer": "ImageAssetPointerChunk",
                "dmel": "DmelChunk",
            },
            default="EncodedTextChunk",
        ),
    ),
    "tinkex.types._training": (
        _Spec(
            "OptimizerConfig",
            "type",
            {"adamw": "AdamOptimizerConfig", "dimuon": "DimuonOptimizerConfig"},
            default="OptimizerConfigBase",
        ),
        _Spec(
            "OptimParams",
            "type",
            {"dimuon": "DimuonParams"},
            default="OptimParamsBase",
            missing="AdamParams",  # Adam parameters carry no type
        ),
    ),
    "tinkex.types._session": (
        _Spec(
            "ClientSessionFinishReason",
            "type",
            {
                "success": "ClientSessionFinishSuccess",
                "errored": "ClientSessionFinishErrored",
                "interrupted": "ClientSessionFinishInterrupted",
            },
        ),
        _Spec(
            "SessionFailedReason",
            "type",
            {
                "request": "SessionFailedRequestReason",
                "training_run": "SessionFailedTrainingRunReason",
                "sampling_session": "SessionFailedSamplingSessionReason",
            },
        ),
        _Spec(
            "SessionStatus",
            "type",
            {
                "client_finished": "ClientSessionFinished",
                "failed": "SessionFailed",
                "cancelled": "SessionCancelled",
                "active": "SessionActive",
            },
        ),
        _Spec(
            "SessionStatusQuery",
            "type",
            {
                "active": "ActiveSessionStatusQuery",
                "cancelled": "CancelledSessionStatusQuery",
                "failed": "FailedSessionStatusQuery",
                "client_finished": "ClientFinishedSessionStatusQuery",
            },
        ),
        _Spec(
            "SearchOwner",
            "type",
            {
                "own": "OwnSearchOwner",
                "accessible": "AccessibleSearchOwner",
                "user": "UserSearchOwner",
            },
        ),
        _Spec(
            "FutureCompletion",
            "state",
            {"finished": "FutureFinished", "failed": "FutureFailed"},
            declared=True,
        ),
        _Spec(
            "TelemetryEvent",
            "event",
            {
                "GENERIC_EVENT": "GenericEvent",
                "SESSION_START": "SessionStartEvent",
                "SESSION_END": "SessionEndEvent",
                "UNHANDLED_EXCEPTION": "UnhandledExceptionEvent",
            },
        ),
    ),
    "tinkex.types._rest": (
        _Spec(
            "BillingEventInfo",
            "type",
            {
                "training": "TrainingBillingEvent",
                "sampling_prefill": "SamplingPrefillBillingEvent",
                "sampling_sample": "SamplingSampleBillingEvent",
                "checkpoint": "CheckpointBillingEvent",
                "storage": "StorageBillingEvent",
            },
        ),
    ),
}


def _members(tp: Any) -> frozenset[Any]:
    return frozenset(a for a in typing.get_args(tp) if a is not type(None))


@functools.cache
def _module_tables(module_name: str) -> tuple[UnionTable, ...]:
    module = importlib.import_module(module_name)

    def cls(name: str | None) -> type | None:
        return None if name is None else getattr(module, name)

    return tuple(
        UnionTable(
            getattr(module, spec.union),
            spec.key,
            {tag: getattr(module, name) for tag, name in spec.classes.items()},
            cls(spec.default),
            cls(spec.missing),
            spec.declared,
        )
        for spec in _SPECS[module_name]
    )


def union_tables() -> tuple[UnionTable, ...]:
    """Every union of tinkex.types with its discriminator table (imports all type modules)."""
    return tuple(table for name in _SPECS for table in _module_tables(name))


def union_table(tp: Any) -> UnionTable | None:
    """The table of union ``tp`` (``X | None`` finds the table of ``X``), or None."""
    try:
        members = _members(tp)
    except TypeError:
        return None
    for module_name in {getattr(m, "__module__", "") for m in members}:
        if module_name in _SPECS:
            for table in _module_tables(module_name):
                if _members(table.union) == members:
                    return table
    return None
