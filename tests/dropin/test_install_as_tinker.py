"""``tinkex.install_as_tinker()``: identity, idempotence, refusal after the official import,
release mismatch, clear errors for paths tinkex does not provide, and cheap imports.

Each check runs in a fresh interpreter (``_child.run_code``): the alias is process-wide.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _child import assert_ok, run_code

pytest.importorskip("tinker")  # the official package must be installed: the alias wins anyway


def test_imports_the_cookbook_uses_resolve_to_tinkex_objects() -> None:
    out = assert_ok(
        run_code(
            """
            import json, sys
            import tinkex
            tinkex.install_as_tinker()
            tinkex.install_as_tinker()  # a second call changes nothing

            import tinker
            from tinker import types, AdminClient, APIFuture, ModelInput, SamplingClient, TensorData
            from tinker.types import LossFnType, ExternalWeightsUrlsResponse, AuditLogEntry
            from tinker.types.tensor_data import TensorData as TD
            from tinker.lib.public_interfaces import APIFuture as PF
            from tinker.lib.public_interfaces.rest_client import RestClient
            import tinker.types.datum

            finders = [f for f in sys.meta_path if type(f).__name__ == "TinkerAliasFinder"]
            print(json.dumps({
                "tensor": TD is tinkex.types.TensorData is TensorData,
                "datum": tinker.types.datum.Datum is tinkex.Datum is tinker.Datum,
                "types": types.EncodedTextChunk is tinkex.types.EncodedTextChunk,
                "clients": [RestClient is tinkex.RestClient, AdminClient is tinkex.AdminClient,
                            SamplingClient is tinkex.SamplingClient,
                            tinker.ServiceClient is tinkex.ServiceClient],
                "future": PF is APIFuture is tinkex.APIFuture,
                "errors": tinker.BadRequestError is tinkex.BadRequestError,
                "model_input": ModelInput.from_ints([1, 2]).to_ints(),
                "attribute_path": tinker.lib.public_interfaces.rest_client.RestClient
                                  is tinkex.RestClient,
                "version": tinker.__version__,
                "repr": repr(tinker),
                "finders": len(finders),
                "installed": tinkex._alias.is_installed(),
                "official_file": [m for m, mod in sys.modules.items()
                                  if m.startswith("tinker") and getattr(mod, "__file__", None)],
            }))
            """
        )
    )
    seen = json.loads(out)
    assert seen == {
        "tensor": True,
        "datum": True,
        "types": True,
        "clients": [True, True, True, True],
        "future": True,
        "errors": True,
        "model_input": [1, 2],
        "attribute_path": True,
        "version": "0.38.0",
        "repr": "<module 'tinker' (alias of tinkex)>",
        "finders": 1,
        "installed": True,
        "official_file": [],
    }


def test_star_import_and_dir_list_the_names() -> None:
    out = assert_ok(
        run_code(
            """
            import tinkex
            tinkex.install_as_tinker()
            from tinker.types import *
            import tinker.types.sample_response as module
            print(Datum is tinkex.Datum, SamplingParams is tinkex.SamplingParams,
                  module.__all__, "SampleResponse" in dir(module))
            """
        )
    )
    assert out.split() == ["True", "True", "['SampleResponse']", "True"]


def test_refuses_after_the_official_package_was_imported_and_changes_nothing() -> None:
    out = assert_ok(
        run_code(
            """
            import json, sys, warnings
            warnings.simplefilter("ignore")
            import tinker                      # the official package
            import tinkex
            before = (list(sys.meta_path), sys.modules["tinker"])
            try:
                tinkex.install_as_tinker()
            except tinkex.TinkerAlreadyImportedError as exc:
                message, is_import_error = str(exc), isinstance(exc, ImportError)
            else:
                raise SystemExit("no error")
            print(json.dumps({
                "message": message,
                "is_import_error": is_import_error,
                "unchanged": (list(sys.meta_path), sys.modules["tinker"]) == before,
                "installed": tinkex._alias.is_installed(),
                "official": tinker.__file__,
            }))
            """
        )
    )
    seen = json.loads(out)
    assert seen["is_import_error"] and seen["unchanged"] and not seen["installed"]
    message = seen["message"]
    assert "must run before the official tinker package is imported" in message
    assert seen["official"] in message  # says where the official package came from
    assert "python -m tinkex.as_tinker" in message and "TINKEX_AS_TINKER=1" in message


def _fake_official_release(root: Path, version: str) -> Path:
    """A directory whose ``tinker-<version>.dist-info`` shadows the installed official one."""
    dist_info = root / f"tinker-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tinker\nVersion: {version}\n"
    )
    return root


def test_warns_when_another_official_release_is_installed(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(_fake_official_release(tmp_path, "0.41.2"))}
    code = """
        import warnings, tinkex
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tinkex.install_as_tinker()
        import tinker
        print(tinkex._alias.is_installed(), tinker.Datum is tinkex.Datum)
        print(*[str(w.message) for w in caught], sep="\\n")
    """
    out = assert_ok(run_code(code, env=env)).splitlines()
    assert out[0] == "True True"
    assert out[1:] == [
        "tinkex implements the tinker 0.38.0 API, but tinker 0.41.2 is installed; code written "
        "for tinker 0.41.2 may use names tinkex does not provide (they fail with a clear "
        "ImportError/AttributeError). Install tinker==0.38.0 alongside tinkex to match."
    ]


def test_warning_turned_error_leaves_nothing_installed(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(_fake_official_release(tmp_path, "0.39.0"))}
    code = """
        import sys, warnings, tinkex
        warnings.simplefilter("error")
        try:
            tinkex.install_as_tinker()
        except UserWarning as exc:
            print("raised", tinkex._alias.is_installed(), "tinker" in sys.modules)
    """
    assert assert_ok(run_code(code, env=env)).split() == ["raised", "False", "False"]


def test_same_minor_release_does_not_warn(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(_fake_official_release(tmp_path, "0.38.7"))}
    code = """
        import warnings, tinkex
        warnings.simplefilter("error")
        tinkex.install_as_tinker()
        print(tinkex._alias.is_installed())
    """
    assert assert_ok(run_code(code, env=env)).split() == ["True"]


def test_paths_and_names_tinkex_lacks_fail_clearly() -> None:
    out = assert_ok(
        run_code(
            """
            import tinkex
            tinkex.install_as_tinker()
            import tinker
            for statement in ("import tinker.proto.tinker_public_pb2",
                              "import tinker._base_client",
                              "from tinker.lib.retry_handler import RetryHandler",
                              "tinker.types.NoSuchType"):
                try:
                    exec(statement)
                except (ImportError, AttributeError) as exc:
                    print(type(exc).__name__, "|", exc)
            """
        )
    )
    lines = out.splitlines()
    assert lines[0].startswith("ModuleNotFoundError | No module named 'tinker.proto'")
    assert "tinkex.install_as_tinker() maps the public modules" in lines[0]
    assert lines[1].startswith("ModuleNotFoundError | No module named 'tinker._base_client'")
    assert lines[2].startswith("ImportError | cannot import name 'RetryHandler'")
    assert lines[3] == (
        "AttributeError | module 'tinker.types' (tinkex's tinker alias) has no attribute "
        "'NoSuchType'; tinkex does not provide it (docs/cookbook.md lists what the alias covers)"
    )


def test_import_tinkex_and_the_alias_stay_cheap() -> None:
    """``import tinkex`` loads no alias code; ``import tinker.X`` loads no heavy dependency."""
    out = assert_ok(
        run_code(
            """
            import sys
            import tinkex
            print("tinkex._alias" in sys.modules)
            tinkex.install_as_tinker()
            import tinker, tinker.types.tensor_data, tinker.lib.public_interfaces
            heavy = ("numpy", "requests", "cattrs", "tinkex.clients", "tinkex.types._tensor")
            print([name for name in heavy if name in sys.modules])
            tinker.types.tensor_data.TensorData
            print("tinkex.types._tensor" in sys.modules)
            """
        )
    )
    assert out.splitlines() == ["False", "[]", "True"]
