"""Every public module path and name of the installed official ``tinker`` works under the alias.

``_official_inventory.py`` walks the official package (in its own interpreter) and lists each
public module path with its public names; ``_check_alias.py`` imports all of them under
``tinkex.install_as_tinker()`` in a fresh interpreter and reports what is missing, what is not
tinkex's own object, and whether any official module got loaded. Deliberate gaps are listed
below, each with its reason; a listed gap that tinkex now fills fails too, so the lists stay
true.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _child import HERE, assert_ok, run_python

pytest.importorskip("tinker")

_ASYNC_INTERNALS = (
    "machinery of the official SDK's asyncio/httpx client (AsyncTinker provider, connection "
    "pools, client holder, sessions poller, telemetry batching, sdk-method headers, sync-only "
    "guards); tinkex is built differently (tinkex._transport, tinkex.clients._holder, "
    "tinkex.telemetry) and has no object these names could honestly stand for. No user code "
    "we know imports them (tinker-cookbook 0.6.1 does not)."
)

#: Module trees (the path and everything below it) that the alias does not provide.
EXCLUDED_TREES: dict[str, str] = {
    "tinker.cli": (
        "the official `tinker` command line (click commands, its login flow and output "
        "formatting); tinkex's command line is `tinkex` (tinkex.cli), not importable code"
    ),
    "tinker.proto": (
        "protoc-generated message classes (tinker_public_pb2) and converters between them and "
        "the pydantic types; they need the protobuf runtime, which tinkex does not depend on. "
        "tinkex's pure-Python codec (tinkex.types._proto) encodes the same bytes"
    ),
    "tinker.resources": (
        "Stainless-generated low-level async resources bound to the official AsyncTinker HTTP "
        "client (tinker._client); tinkex has no such client, and its public clients cover "
        "every endpoint"
    ),
}

#: Single modules the alias does not provide.
EXCLUDED_MODULES: dict[str, str] = {
    "tinker.lib.async_tinker_provider": _ASYNC_INTERNALS,
    "tinker.lib.client_connection_pool_type": _ASYNC_INTERNALS,
    "tinker.lib.internal_client_holder": _ASYNC_INTERNALS,
    "tinker.lib.public_interfaces.rest_client_common": _ASYNC_INTERNALS,
    "tinker.lib.queue_state_logger": _ASYNC_INTERNALS,
    "tinker.lib.sdk_method": _ASYNC_INTERNALS,
    "tinker.lib.session_futures_poller": _ASYNC_INTERNALS,
    "tinker.lib.sync_only": _ASYNC_INTERNALS,
    "tinker.lib.telemetry": _ASYNC_INTERNALS,
    "tinker.lib.telemetry_provider": _ASYNC_INTERNALS,
    "tinker.lib.chunked_fwdbwd_helpers": (
        "the official client's chunk-merging helper; tinkex merges chunk outputs in "
        "tinkex.clients._chunking.combine_outputs, which takes the chunk sizes too (metrics "
        "are weighted by them), so it cannot stand in for combine_fwd_bwd_output_results"
    ),
    "tinker.lib.console_urls": (
        "URL builders for the official web console used by the official client's log lines; "
        "tinkex logs console links itself and keeps no such module"
    ),
}

#: Single names of provided modules that the alias does not provide.
EXCLUDED_NAMES: dict[tuple[str, str], str] = {
    ("tinker.lib.api_future_impl", "QueueStateObserver"): (
        "abstract base the official SamplingClient derives from; tinkex's SamplingClient has "
        "the same on_queue_state_change method but reports queue state through telemetry "
        "(tinkex.future.queue_state), without an observer base class"
    ),
    ("tinker.lib.base_url", "resolve_base_url"): (
        "tinkex resolves the base URL together with the key and the rest of the settings in "
        "tinkex._config.ClientSettings.resolve (same order: argument, TINKER_BASE_URL, default)"
    ),
    ("tinker.lib.experimental", "experimental"): (
        "the official SDK's decorator (typing_extensions.deprecated) for marking its own "
        "experimental methods; tinkex warns with ExperimentalWarning inside those methods"
    ),
    ("tinker.lib.public_interfaces.training_client", "CustomLossFnV1"): (
        "a private-looking type alias of the official training client module; the public "
        "custom-loss types are LossHandle and PerDatumLossFn"
    ),
    ("tinker.lib.public_interfaces.training_client", "MODEL_ID_NOT_SET_ERROR"): (
        "error text of the official client; tinkex raises its own message"
    ),
    ("tinker.lib.public_interfaces.training_client", "fetch_training_info"): (
        "helper taking the official InternalClientHolder; TrainingClient.get_info() is the "
        "public call"
    ),
    ("tinker.lib.retry_handler", "RetryHandler"): (
        "the official asyncio retry loop; tinkex's SamplingClient applies the same RetryConfig "
        "itself and exposes no handler object"
    ),
    ("tinker.lib.retry_handler", "is_retryable_status_code"): (
        "internal predicate of RetryHandler; tinkex's retry policies (tinkex._transport.retry) "
        "decide on the same statuses (408, 409, 429, 5xx)"
    ),
    **{
        ("tinker.lib.credentials", name): (
            "pydantic records of the official CLI's credential store (`tinker login`); tinkex "
            "reads the same file through default_credentials_path() and has no store classes"
        )
        for name in (
            "ApiKeyDetails",
            "ApiKeyOrgDetails",
            "ApiKeyUserDetails",
            "CredentialStore",
            "GeneratedKey",
            "JsonCredentialStore",
            "KeyRecordV1",
            "ManualKey",
            "StoredCredentialsV1",
        )
    },
}


def _excluded_module(path: str) -> bool:
    return path in EXCLUDED_MODULES or any(
        path == tree or path.startswith(tree + ".") for tree in EXCLUDED_TREES
    )


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The official package's public paths and names (``_official_inventory.py``)."""
    out = assert_ok(run_python([str(HERE / "_official_inventory.py")]))
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture(scope="module")
def report(inventory: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What importing every official path under the alias gave (``_check_alias.py``)."""
    file = Path(tmp_path_factory.mktemp("alias")) / "inventory.json"
    file.write_text(json.dumps(inventory))
    out = assert_ok(run_python([str(HERE / "_check_alias.py"), str(file)]))
    data: dict[str, Any] = json.loads(out)
    return data


def test_inventory_is_the_official_0_38_package(inventory: dict[str, Any]) -> None:
    modules = inventory["modules"]
    assert inventory["version"].startswith("0.38."), inventory["version"]
    assert len(modules) > 150, sorted(modules)  # the walk found the package, lib/ included
    assert "tinker.lib.public_interfaces.rest_client" in modules
    assert "TensorData" in modules["tinker.types.tensor_data"]


def test_every_public_module_path_imports(report: dict[str, Any]) -> None:
    missing = {p: e for p, e in report["missing_modules"].items() if not _excluded_module(p)}
    assert not missing, "official module paths that do not import under the alias:\n" + "\n".join(
        f"  {p}: {e}" for p, e in sorted(missing.items())
    )


def test_every_public_name_is_offered(report: dict[str, Any]) -> None:
    missing = [
        f"{path}.{name}"
        for path, names in sorted(report["missing_names"].items())
        for name in names
        if (path, name) not in EXCLUDED_NAMES
    ]
    assert not missing, "official names missing under the alias:\n  " + "\n  ".join(missing)


def test_names_are_tinkex_objects_and_no_official_module_loads(report: dict[str, Any]) -> None:
    assert report["not_tinkex"] == []
    assert report["official_loaded"] == []


def test_exclusions_are_still_true(inventory: dict[str, Any], report: dict[str, Any]) -> None:
    """Each listed gap exists in the official package and is still a gap in tinkex."""
    modules = inventory["modules"]
    for tree in EXCLUDED_TREES:
        assert tree in modules, f"{tree} is no longer an official module: drop it from the list"
        below = [p for p in modules if p == tree or p.startswith(tree + ".")]
        provided = [p for p in below if p not in report["missing_modules"]]
        assert not provided, f"now provided, drop from EXCLUDED_TREES: {provided}"
    for path in EXCLUDED_MODULES:
        assert path in modules, f"{path} is no longer an official module: drop it from the list"
        assert path in report["missing_modules"], f"{path} is now provided: drop it from the list"
    for path, name in EXCLUDED_NAMES:
        assert name in modules.get(path, []), f"{path}.{name} is no longer official: drop it"
        assert name in report["missing_names"].get(path, []), f"{path}.{name} is now provided"
