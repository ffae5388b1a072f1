"""The adapter between wire bodies and the server's values (both directions).

* :mod:`.requests`: body encodings and forward_backward bodies (JSON or protobuf) -> arrays.
* :mod:`.results`: job results -> the SDK's ``ForwardBackwardOutput``/``SampleResponse`` ->
  protobuf or JSON (the SDK converter's ``to_wire``).
"""

from __future__ import annotations

from tinkex.local.codec.requests import (
    PROTOBUF,
    BodyTooLargeError,
    CodecError,
    FwdBwdCall,
    Provenance,
    TargetIds,
    decode_body,
    load_json,
    parse_forward_backward,
    prompt_tokens,
    stop_tokens,
    target_ids,
    tensor_from_json,
    wants_protobuf,
)
from tinkex.local.codec.results import (
    FwdBwdPayload,
    SamplePayload,
    encode_result,
    result_bytes,
    result_size,
)

__all__ = [
    "PROTOBUF",
    "BodyTooLargeError",
    "CodecError",
    "FwdBwdCall",
    "FwdBwdPayload",
    "Provenance",
    "SamplePayload",
    "TargetIds",
    "decode_body",
    "encode_result",
    "load_json",
    "parse_forward_backward",
    "prompt_tokens",
    "result_bytes",
    "result_size",
    "stop_tokens",
    "target_ids",
    "tensor_from_json",
    "wants_protobuf",
]
