"""``tinkex.install_as_tinker()``: make ``import tinker`` give tinkex, for code you cannot edit.

The convention of ``pymysql.install_as_MySQLdb()``. Afterwards ``import tinker`` and every
``import tinker.X`` / ``from tinker.X import Y`` of the official SDK's public module paths
(``tinker.types.tensor_data``, ``tinker.lib.public_interfaces``, ...) resolve to tinkex's own
objects, even when the official ``tinker`` package is installed too:

>>> import tinkex
>>> tinkex.install_as_tinker()                      # doctest: +SKIP
>>> import tinker.types.tensor_data                 # doctest: +SKIP
>>> tinker.types.tensor_data.TensorData is tinkex.types.TensorData   # doctest: +SKIP
True

The module table is :mod:`tinkex._alias._table`; the import hook :mod:`tinkex._alias._finder`.
New interpreters follow when ``TINKEX_AS_TINKER=1`` is in their environment (the start-up hook
installed with tinkex calls :func:`install_from_environment`); ``python -m tinkex.as_tinker``
sets it.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

from tinkex._version import TINKER_SDK_VERSION

__all__ = [
    "ENV_VAR",
    "TinkerAlreadyImportedError",
    "install_as_tinker",
    "install_from_environment",
    "is_installed",
]

#: Environment variable that makes every new interpreter install the alias at start-up.
ENV_VAR = "TINKEX_AS_TINKER"

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})

_lock = threading.Lock()


class TinkerAlreadyImportedError(ImportError):
    """``install_as_tinker()`` was called after the official ``tinker`` package was imported."""


def is_installed() -> bool:
    """True when ``import tinker`` resolves to tinkex in this interpreter."""
    from tinkex._alias._finder import TinkerAliasFinder

    return any(isinstance(finder, TinkerAliasFinder) for finder in sys.meta_path)


def install_as_tinker() -> None:
    """Make ``tinker`` and its public submodules resolve to tinkex in this interpreter.

    Call it before anything imports ``tinker``. Calling it again is harmless (nothing
    happens). Either the alias is installed completely or, on error, nothing changed.
    It covers this interpreter only; set ``TINKEX_AS_TINKER=1`` in the environment (or run
    the program with ``python -m tinkex.as_tinker``) for subprocesses to follow.

    Warns (``UserWarning``) when the installed official ``tinker`` is another minor release
    than the 0.38 API tinkex implements: code written for it may use names tinkex lacks.

    Raises:
        TinkerAlreadyImportedError: the official ``tinker`` (or one of its modules) is already
            in ``sys.modules``; the message says where it came from and what to do.

    Example::

        import tinkex
        tinkex.install_as_tinker()
        import tinker_cookbook.recipes.sl_basic    # its ``import tinker`` gets tinkex
    """
    _install(check_release=True)


def install_from_environment() -> None:
    """Install the alias when ``TINKEX_AS_TINKER`` is ``1``/``true``/``yes``/``on``.

    Called at interpreter start-up by the ``tinkex-as-tinker.pth`` hook installed with
    tinkex. A problem is reported on stderr, never raised: start-up must not fail. It does
    not compare the official release (the process that set the variable did, and each worker
    would repeat the warning and pay for ``importlib.metadata``).
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _OFF:
        return
    if value not in _ON:
        print(
            f"tinkex: ignoring {ENV_VAR}={os.environ[ENV_VAR]!r}; use 1 to import tinkex as "
            "tinker, 0 or unset for the official package",
            file=sys.stderr,
        )
        return
    try:
        _install(check_release=False)
    except ImportError as exc:
        print(f"tinkex: {ENV_VAR}=1 ignored: {exc}", file=sys.stderr)


def _install(*, check_release: bool) -> None:
    from tinkex._alias._finder import TinkerAliasFinder

    with _lock:
        if is_installed():
            return
        _refuse_if_official_imported()
        if check_release:
            _warn_if_other_release()
        sys.meta_path.insert(0, TinkerAliasFinder())


def _refuse_if_official_imported() -> None:
    from tinkex._alias._finder import is_alias_module

    loaded = sorted(
        name
        for name, module in sys.modules.items()
        if (name == "tinker" or name.startswith("tinker.")) and not is_alias_module(module)
    )
    if not loaded:
        return
    first = sys.modules.get(loaded[0])
    where = getattr(first, "__file__", None) or repr(first)
    raise TinkerAlreadyImportedError(
        f"tinkex.install_as_tinker() must run before the official tinker package is imported, "
        f"but {loaded[0]!r} is already loaded from {where} ({len(loaded)} tinker module(s) in "
        "sys.modules). Call tinkex.install_as_tinker() first thing in your entry point, before "
        "anything imports tinker (or a library built on it, such as tinker_cookbook); or run "
        "the program unchanged with `python -m tinkex.as_tinker SCRIPT.py` / "
        f"`python -m tinkex.as_tinker -m MODULE`, or with {ENV_VAR}=1 in its environment.",
        name="tinker",
    )


def _warn_if_other_release() -> None:
    from importlib import metadata

    try:
        installed = metadata.version("tinker")
    except metadata.PackageNotFoundError:
        return
    if installed.split(".")[:2] == TINKER_SDK_VERSION.split(".")[:2]:
        return
    warnings.warn(
        f"tinkex implements the tinker {TINKER_SDK_VERSION} API, but tinker {installed} is "
        f"installed; code written for tinker {installed} may use names tinkex does not "
        f"provide (they fail with a clear ImportError/AttributeError). Install "
        f"tinker=={TINKER_SDK_VERSION} alongside tinkex to match.",
        UserWarning,
        stacklevel=4,
    )
