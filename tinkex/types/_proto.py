"""Protobuf codec of the Tinker wire messages (``package tinker_public``, proto3), pure Python.

The schema is written out in ``tinker_public.proto`` next to this module; field numbers follow
the Tinker wire protocol (forward_backward request/output, sample response).  The byte layer is
:mod:`tinkex.types._proto_wire`; one module a message maps it to and from the attrs types:
:mod:`~tinkex.types._proto_request` (``ForwardBackwardRequest``, also read straight to arrays),
:mod:`~tinkex.types._proto_output` (``ForwardBackwardOutput``), :mod:`~tinkex.types._proto_sample`
(``SampleResponse``), on the ``Tensor`` message and array helpers of
:mod:`~tinkex.types._proto_tensor`. This module is the codec's one entry point.

Arrays travel as raw little-endian bytes, so encoding and decoding are numpy calls
(``astype(..., copy=False)`` + buffer views on the way out, ``np.frombuffer`` on the way in) and
never loop over elements in Python.  numpy is imported on first use.

Malformed input raises ``ValueError`` naming the message path and field, e.g.
``ForwardBackwardRequest.data[2].loss_fn_inputs['weights'].shape: expected wire type LEN ...``.
"""

from __future__ import annotations

from tinkex.types._proto_output import (
    decode_forward_backward_output,
    encode_forward_backward_columns,
    encode_forward_backward_output,
)
from tinkex.types._proto_request import (
    ArrayDatum,
    ArrayForwardBackward,
    decode_forward_backward_arrays,
    decode_forward_backward_request,
    encode_forward_backward_request,
)
from tinkex.types._proto_sample import decode_sample_response, encode_sample_response

__all__ = [
    "ArrayDatum",
    "ArrayForwardBackward",
    "decode_forward_backward_arrays",
    "decode_forward_backward_output",
    "decode_forward_backward_request",
    "decode_sample_response",
    "encode_forward_backward_columns",
    "encode_forward_backward_output",
    "encode_forward_backward_request",
    "encode_sample_response",
]
