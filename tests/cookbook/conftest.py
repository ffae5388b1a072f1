"""The tinker-cookbook compatibility suite.

`make install` / `make test` install tinker-cookbook (tests/cookbook/requirements.txt, then the
cookbook itself without dependencies). In a venv made another way the tests that need it skip,
naming the install step; on CI (``CI`` set) a missing cookbook is an error instead.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

INSTALL_HINT = "tinker-cookbook is not installed: run `make install-cookbook`"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and importlib.util.find_spec("tinker_cookbook") is None:
        raise pytest.UsageError(f"CI runs the cookbook suite (tests/cookbook), but {INSTALL_HINT}")
