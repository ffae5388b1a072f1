"""The ``ForwardBackwardOutput`` message of the protobuf codec, both ways.

Every datum's values of one output field travel in one ``BatchedTensor`` of an ``ArrayRecord``
(the data joined, byte offsets per datum); :func:`encode_forward_backward_columns` writes the
same bytes from columns the local server already holds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from tinkex.types._proto_tensor import (
    DTYPE_INT64,
    DTYPE_TO_WIRE,
    DTYPE_UNSPECIFIED,
    LABEL_NUMPY,
    NUMPY_LABEL,
    WIRE_LABEL,
    WIRE_NUMPY,
    from_wire,
    lazy_numpy,
    raw_view,
)
from tinkex.types._proto_wire import (
    Buffer,
    ProtoWriter,
    as_bytes,
    as_double,
    as_enum,
    as_int64,
    as_message,
    as_packed_int64,
    as_string,
    iter_fields,
    map_entry,
)
from tinkex.types._tensor import TensorData
from tinkex.types._training import ForwardBackwardOutput

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

# Field names per message, for error messages of the wire layer.
_OUTPUT_FIELDS: Final = {1: "loss_fn_output_type", 2: "loss_fn_outputs", 3: "metrics"}
_RECORD_FIELDS: Final = {1: "type_tag", 2: "fields", 3: "num_datums"}
_BATCHED_FIELDS: Final = {1: "data", 2: "offsets", 3: "dtype", 4: "trailing_shape"}


def _output_signature(
    datum: dict[str, TensorData], names: Sequence[str], where: str
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if len(datum) != len(names) or any(n not in datum for n in names):
        raise ValueError(
            f"{where}: every datum must have the same output fields; expected {sorted(names)}, "
            f"got {sorted(datum)}"
        )
    sig = []
    for name in names:
        td = datum[name]
        if td.dtype not in DTYPE_TO_WIRE:
            raise ValueError(f"{where}[{name!r}].dtype: cannot encode {td.dtype!r}")
        shape = td.shape or []
        sig.append((td.dtype, tuple(shape[1:])))
    return tuple(sig)


def _write_batched(
    rec: ProtoWriter,
    name: str,
    parts: list[Buffer],
    offsets: NDArray,
    label: str,
    trailing: Sequence[int],
) -> None:
    """One ``fields`` entry of an ``ArrayRecord``: field ``name``, a ``BatchedTensor`` of the
    datums' values ``parts`` (joined) starting at byte ``offsets``."""
    bt = ProtoWriter()
    bt.bytes_parts(1, parts)
    bt.bytes_field(2, offsets.data.cast("B"))
    bt.enum(3, DTYPE_TO_WIRE[label])
    bt.packed_int64(4, trailing)
    entry = ProtoWriter()
    entry.string(1, name, always=True)
    entry.message(2, bt)
    rec.message(2, entry)


def _write_record(
    datums: Sequence[dict[str, TensorData]], names: Sequence[str], type_tag: str
) -> ProtoWriter:
    np = lazy_numpy()
    rec = ProtoWriter()
    rec.string(1, type_tag)
    for name in names:
        first = datums[0][name]
        wire = LABEL_NUMPY[first.dtype]
        parts: list[Buffer] = []
        sizes = np.zeros(len(datums) + 1, dtype="<i8")
        for i, d in enumerate(datums):
            td = d[name]
            arr = td.to_numpy() if td.sparse_crow_indices is not None else td.values_array()
            part = raw_view(arr, wire)
            parts.append(part)
            sizes[i + 1] = len(part)
        offsets = np.cumsum(sizes, dtype="<i8")
        _write_batched(rec, name, parts, offsets, first.dtype, (first.shape or [])[1:])
    rec.int64(3, len(datums))
    return rec


def _write_metrics(w: ProtoWriter, metrics: Mapping[str, float]) -> None:
    for key, value in metrics.items():
        entry = ProtoWriter()
        entry.string(1, key, always=True)
        entry.double(2, float(value), always=True)
        w.message(3, entry)


def encode_forward_backward_columns(
    loss_fn_output_type: str,
    lengths: NDArray,
    columns: Mapping[str, NDArray],
    metrics: Mapping[str, float],
) -> bytes:
    """Encode a ``ForwardBackwardOutput`` given as columns: datum ``i`` has ``lengths[i]``
    values of each field, and ``columns[name]`` (1-D float32 or int64) holds every datum's
    values back to back. The bytes are those of :func:`encode_forward_backward_output` for the
    per-datum ``TensorData`` of the same values (one ``ArrayRecord``), written without them.

    Raises:
        ValueError: a column that is not 1-D float32/int64 or does not hold ``sum(lengths)``
            values.
    """
    np = lazy_numpy()
    w = ProtoWriter()
    w.string(1, loss_fn_output_type)
    if len(lengths):
        ends = np.cumsum(lengths, dtype="<i8")
        rec = ProtoWriter()
        rec.string(1, loss_fn_output_type)
        for name, values in columns.items():
            label = NUMPY_LABEL.get(values.dtype.str)
            if label is None or values.ndim != 1 or values.size != int(ends[-1]):
                raise ValueError(
                    f"ForwardBackwardOutput column {name!r} must be 1-D float32/int64 with "
                    f"{int(ends[-1])} values, got {values.dtype} of shape {values.shape}"
                )
            offsets = np.zeros(len(lengths) + 1, dtype="<i8")
            offsets[1:] = ends * values.dtype.itemsize
            _write_batched(rec, name, [raw_view(values, LABEL_NUMPY[label])], offsets, label, [])
        rec.int64(3, len(lengths))
        w.message(2, rec)
    _write_metrics(w, metrics)
    return w.getvalue()


def encode_forward_backward_output(out: ForwardBackwardOutput) -> bytes:
    """Encode a ``ForwardBackwardOutput``: all datums in one ``ArrayRecord`` per run of datums
    whose fields share dtype and trailing shape (normally exactly one record).

    Every datum must carry the same output field names (ValueError otherwise).
    """
    w = ProtoWriter()
    w.string(1, out.loss_fn_output_type)
    outputs = out.loss_fn_outputs
    if outputs:
        names = list(outputs[0])
        sigs = [
            _output_signature(d, names, f"ForwardBackwardOutput.loss_fn_outputs[{i}]")
            for i, d in enumerate(outputs)
        ]
        start = 0
        for i in range(1, len(outputs) + 1):
            if i == len(outputs) or sigs[i] != sigs[start]:
                w.message(2, _write_record(outputs[start:i], names, out.loss_fn_output_type))
                start = i
    _write_metrics(w, out.metrics)
    return w.getvalue()


class _Batched(NamedTuple):
    """One ``BatchedTensor``: per-datum flat arrays (views of one array) and their shapes."""

    label: str  # the TensorData dtype
    arrays: list[NDArray]
    trailing: list[int]
    leading: list[int]  # per datum: its size / prod(trailing)


def _read_batched(data: memoryview, where: str) -> _Batched:
    """A ``BatchedTensor``, its offsets and sizes checked with numpy (no loop per datum)."""
    np = lazy_numpy()
    raw: Buffer = b""
    offsets_raw: Buffer = b""
    dtype = DTYPE_UNSPECIFIED
    trailing: list[int] = []
    for fn, wt, v in iter_fields(data, where, _BATCHED_FIELDS):
        if fn == 1:
            raw = as_bytes(f"{where}.data", wt, v)
        elif fn == 2:
            offsets_raw = as_bytes(f"{where}.offsets", wt, v)
        elif fn == 3:
            dtype = as_enum(f"{where}.dtype", wt, v)
        elif fn == 4:
            trailing.extend(as_packed_int64(f"{where}.trailing_shape", wt, v))
    label = WIRE_LABEL.get(dtype)
    if label is None:
        raise ValueError(f"{where}.dtype: unsupported DType {dtype}")
    values = from_wire(f"{where}.data", raw, dtype)
    itemsize = np.dtype(WIRE_NUMPY[dtype]).itemsize
    offsets = from_wire(f"{where}.offsets", offsets_raw, DTYPE_INT64)
    if offsets.size == 0:
        return _Batched(label, [], trailing, [])
    if (
        offsets[0] < 0
        or np.any(np.diff(offsets) < 0)
        or offsets[-1] > values.size * itemsize
        or np.any(offsets % itemsize)
    ):
        raise ValueError(
            f"{where}.offsets: not increasing item-aligned byte offsets within "
            f"{values.size * itemsize} data bytes: {offsets[:8].tolist()}"
        )
    bounds = offsets // itemsize
    sizes = np.diff(bounds)
    inner = math.prod(trailing)
    bad = np.flatnonzero(sizes % inner) if inner else np.arange(sizes.size)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{where}: datum {i} has {int(sizes[i])} values, not a multiple of the trailing "
            f"shape {trailing}"
        )
    arrays = [values[a:b] for a, b in itertools.pairwise(bounds.tolist())]
    return _Batched(label, arrays, trailing, (sizes // inner).tolist() if inner else [])


def decode_forward_backward_output(data: Buffer) -> ForwardBackwardOutput:
    """Decode ``ForwardBackwardOutput`` bytes into per-datum ``TensorData`` dicts.

    Records are concatenated in order; ``num_datums`` is authoritative (0: inferred from the
    first field); INT32 is widened to int64 and BFLOAT16 to float32; the output type keeps the
    text after the last ``:`` (``"ArrayRecord"`` when empty and there are no outputs).
    """
    where = "ForwardBackwardOutput"
    out_type = ""
    metrics: dict[str, float] = {}
    outputs: list[dict[str, TensorData]] = []
    n_records = 0
    for fn, wt, v in iter_fields(data, where, _OUTPUT_FIELDS):
        if fn == 1:
            out_type = as_string(f"{where}.loss_fn_output_type", wt, v)
        elif fn == 2:
            path = f"{where}.loss_fn_outputs[{n_records}]"
            n_records += 1
            outputs.extend(_read_record(as_message(path, wt, v), path))
        elif fn == 3:
            key, val = map_entry(as_message(f"{where}.metrics", wt, v), f"{where}.metrics")
            metrics[key] = as_double(f"{where}.metrics[{key!r}]", *val) if val else 0.0
    # Keep the bare class name, as in the JSON responses.
    out_type = out_type.rsplit(":", 1)[-1] if n_records else out_type or "ArrayRecord"
    return ForwardBackwardOutput(out_type, outputs, metrics)


def _read_record(data: memoryview, where: str) -> list[dict[str, TensorData]]:
    fields: dict[str, _Batched] = {}
    num_datums = 0
    for fn, wt, v in iter_fields(data, where, _RECORD_FIELDS):
        if fn == 1:
            as_string(f"{where}.type_tag", wt, v)
        elif fn == 2:
            key, val = map_entry(as_message(f"{where}.fields", wt, v), f"{where}.fields")
            path = f"{where}.fields[{key!r}]"
            body = as_message(path, *val) if val is not None else memoryview(b"")
            fields[key] = _read_batched(body, path)
        elif fn == 3:
            num_datums = as_int64(f"{where}.num_datums", wt, v)
    if num_datums < 0:
        raise ValueError(f"{where}.num_datums: must be >= 0, got {num_datums}")
    if num_datums == 0 and fields:
        num_datums = len(next(iter(fields.values())).arrays)
    for name, batched in fields.items():
        if len(batched.arrays) != num_datums:
            raise ValueError(
                f"{where}.fields[{name!r}].offsets: {len(batched.arrays)} datums, "
                f"num_datums is {num_datums}"
            )
    outputs: list[dict[str, TensorData]] = [{} for _ in range(num_datums)]
    trusted = TensorData._trusted
    for name, (label, arrays, trailing, leading) in fields.items():
        # Flat native arrays of ``label``'s dtype whose sizes _read_batched checked.
        for output, arr, rows in zip(outputs, arrays, leading, strict=True):
            output[name] = trusted(arr, label, [rows, *trailing])  # type: ignore[arg-type]
    return outputs
