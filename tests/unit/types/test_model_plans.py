"""Model plans (compiled on first use) are built safely in a fresh interpreter.

A model whose default is another model's instance (``CreateModelRequest.optimizer_config =
AdamOptimizerConfig()``) builds that instance while its own plan is being compiled; the
compile must not hold a lock the inner constructor needs (it deadlocked once).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST_CONSTRUCTIONS = [
    "CreateModelRequest(session_id='s', model_seq_id=0, base_model='b')",
    "SessionSearchRequest()",
    "GetInfoResponse(model_id='m', model_data=types.ModelData())",
    "WeightsInfoResponse(base_model='b', is_lora=True)",
]


@pytest.mark.parametrize("expression", FIRST_CONSTRUCTIONS)
def test_first_construction_in_a_fresh_interpreter(expression: str) -> None:
    code = f"from tinkex import types\nprint(types.{expression}.model_dump_json())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("{")
