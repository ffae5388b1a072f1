"""The pydantic API of tinkex's model types, in one mixin over attrs classes.

The official SDK's types (other than its eleven dataclasses) are frozen pydantic models; user
code calls ``model_dump``, ``model_copy``, ``model_validate`` ... on them. tinkex's are frozen
attrs classes deriving from :class:`Model` (responses: unknown constructor arguments ignored,
like tinker's ``BaseModel``) or :class:`StrictModel` (requests: unknown arguments rejected,
like ``StrictBase``). The mixin gives them that API with the same results, without importing
pydantic:

* constructors convert arguments as pydantic's lax mode does (``_coerce.py``), record which
  fields were given (``model_fields_set``) and raise :class:`ValidationError` naming the class,
  the field and the value;
* dumping (``model_dump``/``model_dump_json``) is done by the converter (``_converter.py``),
  the same one that writes the wire format; ``model_json_schema`` by ``_schema.py``.

Per-field constraints that pydantic would express with ``Field(ge=..., min_length=...)`` are
attrs field metadata (``constraints(ge=0)``), read by the constructor and the schema alike.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import attrs

from tinkex.types._coerce import Coercer, Invalid, compile_coercer

__all__ = [
    "Model",
    "StrictModel",
    "ValidationError",
    "FieldInfo",
    "UNDEFINED",
    "constraints",
    "model_plan",
]

M = TypeVar("M", bound="Model")


class ValidationError(ValueError, TypeError):
    """A value a tinkex type does not accept; the message names the class, field and value.

    A ``ValueError`` like pydantic's ``ValidationError`` (what code written for the official
    SDK catches), and a ``TypeError`` for values of the wrong type, as tinkex raised before.
    """


class _Undefined:
    """The default of a required field (pydantic's ``PydanticUndefined``)."""

    _instance: ClassVar[_Undefined | None] = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PydanticUndefined"

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()

_CONSTRAINTS = "tinkex_constraints"
_ALIASES = "tinkex_validation_aliases"
_SERIALIZE = "tinkex_serialize"


def constraints(
    *,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    aware: bool = False,
    aliases: tuple[str, ...] = (),
    serialize: str | None = None,
) -> dict[str, Any]:
    """attrs field metadata: bounds (``ge``, ``le``, ``lt``), lengths, timezone-aware datetimes,
    extra names the constructor accepts (``aliases``) and ``serialize="base64"`` for bytes."""
    limits = {
        k: v
        for k, v in {
            "ge": ge,
            "le": le,
            "lt": lt,
            "min_length": min_length,
            "max_length": max_length,
        }.items()
        if v is not None
    }
    if aware:
        limits["aware"] = True
    meta: dict[str, Any] = {_CONSTRAINTS: limits}
    if aliases:
        meta[_ALIASES] = aliases
    if serialize is not None:
        meta[_SERIALIZE] = serialize
    return meta


@attrs.frozen
class FieldInfo:
    """What ``Model.model_fields`` says about one field (pydantic's ``FieldInfo`` subset)."""

    annotation: Any
    default: Any = UNDEFINED
    default_factory: Callable[[], Any] | None = None
    alias: str | None = None
    validation_alias: tuple[str, ...] | None = None
    serialization_alias: str | None = None
    title: str | None = None
    description: str | None = None
    metadata: tuple[tuple[str, Any], ...] = ()

    def is_required(self) -> bool:
        """True when the field has neither a default nor a default factory."""
        return self.default is UNDEFINED and self.default_factory is None

    def get_default(self, *, call_default_factory: bool = False) -> Any:
        """The default (the factory's result when asked to call it)."""
        if self.default_factory is not None:
            return self.default_factory() if call_default_factory else None
        return None if self.default is UNDEFINED else self.default


# -- compiled per class --------------------------------------------------------------------------


@attrs.frozen
class PlanField:
    """One field of a model as the constructor, the dumper and the schema see it."""

    name: str
    annotation: Any
    info: FieldInfo
    coerce: Coercer | None  # None: the field converts its own argument (attrs converter)
    limits: dict[str, Any]
    serialize: str | None
    #: classes whose values need no conversion (e.g. ``int`` and ``NoneType`` for ``int | None``)
    as_is: frozenset[type] = frozenset()

    @property
    def required(self) -> bool:
        return self.info.is_required()


@attrs.frozen
class ModelPlan:
    """Fields of a model class in order, and how its constructor treats arguments."""

    cls: type
    fields: tuple[PlanField, ...]
    by_name: dict[str, PlanField]
    aliases: dict[str, str]
    extra: str  # "ignore", "forbid" or "allow"
    allow_inf_nan: bool
    required: tuple[str, ...]

    def prepare(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Convert constructor arguments: ``(field arguments, extra arguments or None)``."""
        name = self.cls.__name__
        args: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        for key, value in kwargs.items():
            field = self.by_name.get(key)
            if field is None:
                alias_of = self.aliases.get(key)
                if alias_of is not None and alias_of not in kwargs:
                    field = self.by_name[alias_of]
                elif self.extra == "forbid":
                    raise ValidationError(
                        f"{name} has no field {key!r} (got {_short(value)}); "
                        f"its fields are {sorted(self.by_name)}"
                    )
                elif self.extra == "allow":
                    extra = extra or {}
                    extra[key] = value
                    continue
                else:
                    continue
            if field.coerce is not None and type(value) not in field.as_is:
                try:
                    value = field.coerce(value)
                except Invalid as exc:
                    raise ValidationError(
                        f"{name}.{field.name}{exc.path}: {exc.describe()}"
                    ) from None
            if field.limits or not self.allow_inf_nan:
                _check_limits(name, field, value, self.allow_inf_nan)
            args[field.name] = value
        missing = [name for name in self.required if name not in args]
        if missing:
            raise ValidationError(f"{name} requires {', '.join(missing)}")
        return args, extra


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_limits(cls_name: str, field: PlanField, value: Any, allow_inf_nan: bool) -> None:
    where = f"{cls_name}.{field.name}"
    if value is None:
        return
    limits = field.limits
    if not allow_inf_nan and isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{where} must be a finite number, got {value!r}")
    if "ge" in limits and value < limits["ge"]:
        raise ValidationError(f"{where} must be >= {limits['ge']}, got {value!r}")
    if "le" in limits and value > limits["le"]:
        raise ValidationError(f"{where} must be <= {limits['le']}, got {value!r}")
    if "lt" in limits and value >= limits["lt"]:
        raise ValidationError(f"{where} must be < {limits['lt']}, got {value!r}")
    if "min_length" in limits and len(value) < limits["min_length"]:
        raise ValidationError(
            f"{where} needs at least {limits['min_length']} entries, got {_short(value)}"
        )
    if "max_length" in limits and len(value) > limits["max_length"]:
        raise ValidationError(
            f"{where} takes at most {limits['max_length']} entries, got {len(value)}"
        )
    if limits.get("aware") and getattr(value, "tzinfo", None) is None:
        raise ValidationError(f"{where} must be a timezone-aware datetime, got {value!r}")


_PLANS: dict[type, ModelPlan] = {}
_PLANS_LOCK = threading.Lock()


def model_plan(cls: type) -> ModelPlan:
    """The compiled plan of model class ``cls`` (built on first use: annotations may name
    types defined later in their module)."""
    plan = _PLANS.get(cls)
    if plan is None:
        # Compiled without the lock: compiling builds default instances (``= Model()``), whose
        # constructors need their own plans. Two threads may both compile; one plan is kept.
        compiled = _compile_plan(cls)
        with _PLANS_LOCK:
            plan = _PLANS.setdefault(cls, compiled)
    return plan


def _compile_plan(cls: type) -> ModelPlan:
    hints = typing.get_type_hints(cls)
    fields = []
    aliases: dict[str, str] = {}
    for a in attrs.fields(cls):
        annotation = hints.get(a.name, Any)
        factory = a.default.factory if isinstance(a.default, attrs.Factory) else None  # type: ignore[arg-type]
        default = UNDEFINED if a.default is attrs.NOTHING or factory else a.default
        if factory is not None and _plain_factory(factory):
            # pydantic states ``= {}`` / ``= Model()`` as a default (copied per instance); attrs
            # needs a factory for the same thing. Present it as pydantic does.
            default, factory = factory(), None
        validation_aliases = tuple(a.metadata.get(_ALIASES, ()))
        for alias in validation_aliases:
            if alias != a.name:
                aliases[alias] = a.name
        info = FieldInfo(
            annotation=annotation,
            default=default,
            default_factory=factory,
            validation_alias=validation_aliases or None,
            title=a.name.replace("_", " ").title(),
            metadata=tuple(a.metadata.get(_CONSTRAINTS, {}).items()),
        )
        fields.append(
            PlanField(
                name=a.name,
                annotation=annotation,
                info=info,
                coerce=None if a.converter is not None else compile_coercer(annotation),
                limits=dict(a.metadata.get(_CONSTRAINTS, {})),
                serialize=a.metadata.get(_SERIALIZE),
                as_is=_as_is(annotation),
            )
        )
    config = getattr(cls, "model_config", {})
    return ModelPlan(
        cls=cls,
        fields=tuple(fields),
        by_name={f.name: f for f in fields},
        aliases=aliases,
        extra=config.get("extra", "ignore"),
        allow_inf_nan=config.get("allow_inf_nan", True),
        required=tuple(f.name for f in fields if f.required),
    )


_SCALARS = (int, float, str, bool, bytes, type(None))


def _as_is(annotation: Any) -> frozenset[type]:
    """Scalar classes a value of ``annotation`` may have that its coercer returns unchanged."""
    arms = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            types.UnionType,
        )
        else (annotation,)
    )
    if all(a in _SCALARS for a in arms):
        return frozenset(arms)
    return frozenset()


def _plain_factory(factory: Callable[[], Any]) -> bool:
    """A factory that only makes an empty container or a model's default instance."""
    return factory in (dict, list) or (isinstance(factory, type) and issubclass(factory, Model))


class _ModelFields:
    """``Cls.model_fields``: field name -> :class:`FieldInfo` (a class-level attribute)."""

    def __get__(self, obj: object, cls: type | None = None) -> dict[str, FieldInfo]:
        owner = cls if cls is not None else type(obj)
        return {f.name: f.info for f in model_plan(owner).fields}


class Model:
    """Base of tinkex's model types: the pydantic API over a frozen attrs class.

    Subclasses are ``@attrs.frozen(kw_only=True, slots=False)`` classes (``slots=False`` keeps
    ``vars(obj)`` the field values, as pydantic's ``__dict__``); constructing one converts the
    arguments like pydantic and records the given fields.
    """

    __slots__ = ("_extra", "_fields_set")
    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "ignore"}
    model_fields: ClassVar[dict[str, FieldInfo]] = _ModelFields()  # type: ignore[assignment]
    model_computed_fields: ClassVar[dict[str, Any]] = {}

    _fields_set: frozenset[str]
    _extra: dict[str, Any] | None

    @classmethod
    def __attrs_init_subclass__(cls) -> None:
        generated = cls.__init__

        @functools.wraps(generated)
        def __init__(self: Model, **kwargs: Any) -> None:
            args, extra = model_plan(cls).prepare(kwargs)
            try:
                generated(self, **args)
            except ValidationError:
                raise
            except (TypeError, ValueError) as exc:  # the type's own validators and converters
                raise ValidationError(str(exc)) from exc
            object.__setattr__(self, "_fields_set", frozenset(args))
            object.__setattr__(self, "_extra", extra)

        cls.__init__ = __init__  # type: ignore[method-assign, assignment]
        if cls.model_config.get("extra") == "allow":  # extras show in repr, as pydantic's
            fields_repr = cls.__repr__

            def __repr__(self: Model) -> str:
                text = fields_repr(self)
                extra = getattr(self, "_extra", None)
                if not extra:
                    return text
                return text[:-1] + "".join(f", {k}={v!r}" for k, v in extra.items()) + ")"

            cls.__repr__ = __repr__  # type: ignore[method-assign, assignment]

    # -- state -----------------------------------------------------------------------------
    @property
    def model_fields_set(self) -> set[str]:
        """Names of the fields given explicitly (to the constructor, by validation, ...)."""
        return set(getattr(self, "_fields_set", ()))

    @property
    def model_extra(self) -> dict[str, Any] | None:
        """Extra fields kept by a model that allows them (``extra="allow"``), else None."""
        if type(self).model_config.get("extra") != "allow":
            return None
        return dict(getattr(self, "_extra", None) or {})

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every field, as iterating a pydantic model does."""
        for f in model_plan(type(self)).fields:
            yield f.name, getattr(self, f.name)
        yield from (getattr(self, "_extra", None) or {}).items()

    def __str__(self) -> str:
        return repr(self)

    def __getstate__(self) -> tuple[dict[str, Any], frozenset[str], dict[str, Any] | None]:
        return (
            dict(self.__dict__),
            getattr(self, "_fields_set", frozenset()),
            getattr(self, "_extra", None),
        )

    def __setstate__(
        self, state: tuple[dict[str, Any], frozenset[str], dict[str, Any] | None]
    ) -> None:
        values, fields_set, extra = state
        self.__dict__.update(values)
        object.__setattr__(self, "_fields_set", fields_set)
        object.__setattr__(self, "_extra", extra)

    # -- dumping ---------------------------------------------------------------------------
    def model_dump(
        self,
        *,
        mode: str = "python",
        include: Any = None,
        exclude: Any = None,
        context: Any = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        exclude_computed_fields: bool = False,
        round_trip: bool = False,
        warnings: bool | str = True,
        fallback: Callable[[Any], Any] | None = None,
        serialize_as_any: bool = False,
        polymorphic_serialization: bool | None = None,
    ) -> dict[str, Any]:
        """The fields as a dict; ``mode="json"`` gives only JSON values (ISO datetimes, ...).

        ``exclude_none``/``exclude_unset``/``exclude_defaults`` leave fields out;
        ``include``/``exclude`` take field names (a set) or nested ``{name: ...}`` dicts.
        """
        from tinkex.types._converter import DumpOptions, dump

        if mode not in ("python", "json"):
            raise ValueError(f"model_dump mode must be 'python' or 'json', got {mode!r}")
        options = DumpOptions(
            mode=mode,
            by_alias=bool(by_alias),
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )
        result: dict[str, Any] = dump(self, options, include=include, exclude=exclude)
        return result

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        ensure_ascii: bool = False,
        include: Any = None,
        exclude: Any = None,
        context: Any = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        exclude_computed_fields: bool = False,
        round_trip: bool = False,
        warnings: bool | str = True,
        fallback: Callable[[Any], Any] | None = None,
        serialize_as_any: bool = False,
        polymorphic_serialization: bool | None = None,
    ) -> str:
        """``model_dump(mode="json")`` as JSON text (compact unless ``indent``; inf/NaN as
        null, as pydantic writes them)."""
        from tinkex.types._converter import json_text

        data = self.model_dump(
            mode="json",
            include=include,
            exclude=exclude,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )
        return json_text(data, indent=indent, ensure_ascii=ensure_ascii)

    # -- copying and building ----------------------------------------------------------------
    def model_copy(self: M, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> M:
        """A copy, with ``update`` applied without validation (as pydantic does)."""
        new = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            for key, value in update.items():
                object.__setattr__(new, key, value)
            object.__setattr__(new, "_fields_set", new._fields_set | frozenset(update))
        return new

    @classmethod
    def model_validate(
        cls: type[M],
        obj: Any,
        *,
        strict: bool | None = None,
        extra: str | None = None,
        from_attributes: bool | None = None,
        context: Any = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> M:
        """Build from a dict (nested dicts become nested models) or return an instance."""
        if isinstance(obj, cls):
            return obj
        if from_attributes and not isinstance(obj, Mapping):
            obj = {
                f.name: getattr(obj, f.name) for f in model_plan(cls).fields if hasattr(obj, f.name)
            }
        if not isinstance(obj, Mapping):
            raise ValidationError(
                f"{cls.__name__}.model_validate needs a dict or a {cls.__name__}, "
                f"got {type(obj).__name__}"
            )
        return cls(**{str(k): v for k, v in obj.items()})

    @classmethod
    def model_validate_json(
        cls: type[M],
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: str | None = None,
        context: Any = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> M:
        """``model_validate`` of parsed JSON text; invalid JSON is a :class:`ValidationError`."""
        try:
            data = json.loads(json_data)
        except ValueError as exc:
            raise ValidationError(f"{cls.__name__}: invalid JSON: {exc}") from None
        return cls.model_validate(data)

    @classmethod
    def model_construct(cls: type[M], _fields_set: set[str] | None = None, **values: Any) -> M:
        """An instance from trusted values, without validation; defaults fill the rest."""
        plan = model_plan(cls)
        new = object.__new__(cls)
        given = set()
        for f in plan.fields:
            if f.name in values:
                value = values[f.name]
                given.add(f.name)
            elif f.info.default_factory is not None:
                value = f.info.default_factory()
            elif f.info.default is not UNDEFINED:
                value = f.info.default
            else:
                continue
            object.__setattr__(new, f.name, value)
        extra = {k: v for k, v in values.items() if k not in plan.by_name}
        object.__setattr__(
            new, "_fields_set", frozenset(given if _fields_set is None else _fields_set)
        )
        object.__setattr__(new, "_extra", extra if plan.extra == "allow" and extra else None)
        return new

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = "#/$defs/{model}",
        schema_generator: Any = None,
        mode: str = "validation",
        *,
        union_format: str = "any_of",
    ) -> dict[str, Any]:
        """The JSON schema of this type, in pydantic's layout (``$defs``, ``anyOf``, titles)."""
        from tinkex.types._schema import json_schema

        return json_schema(cls, ref_template=ref_template, mode=mode)


class StrictModel(Model):
    """A model whose constructor rejects unknown arguments (tinker's request types)."""

    __slots__ = ()
    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "forbid"}
