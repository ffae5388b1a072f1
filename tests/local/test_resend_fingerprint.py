"""Resend fingerprints: each field's canonical JSON, digested; the shortcut for scalar fields
writes exactly what the encoder writes."""

from __future__ import annotations

from typing import Any

import pytest

from tinkex.local.engine import resends

VALUES: list[Any] = [
    "",
    "s:sample:0",
    'quote " backslash \\ newline \n tab \t',
    "ünïcödé ✓ \U0001f600",
    "\x00\x1f\x7f",
    0,
    -1,
    2**70,
    None,
    True,
    False,
    1.0,
    -0.5,
    [1, "a", None],
    {"b": 1, "a": [2.5, {"d": None, "c": "x"}]},
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_a_field_is_written_as_the_canonical_encoder_writes_it(value: Any) -> None:
    assert resends._canonical(value) == resends._canonical_json(value)


def test_fingerprints_name_the_fields_that_differ() -> None:
    body = {"seq_id": 3, "sampling_session_id": "s", "prompt": {"chunks": []}, "type": "sample"}
    same = resends.fingerprint(dict(reversed(list(body.items()))), "asample")
    assert resends.fingerprint(body, "asample") == same
    other = resends.fingerprint({**body, "seq_id": 4, "sampling_session_id": "t"}, "asample")
    assert resends.fingerprint(body, "asample").differing(other) == [
        "sampling_session_id",
        "seq_id",
    ]
    # 1 and 1.0 and true are different JSON, so different requests
    ints = resends.fingerprint({"num_samples": 1}, "asample")
    assert ints.differing(resends.fingerprint({"num_samples": 1.0}, "asample")) == ["num_samples"]
    assert ints.differing(resends.fingerprint({"num_samples": True}, "asample")) == ["num_samples"]
