"""setuptools hook: install tinkex's start-up hook ``tinkex-as-tinker.pth`` into site-packages.

Everything else about the package is in setup.cfg. Python runs the ``.pth`` file's one line at
every interpreter start-up; it imports tinkex only when ``TINKEX_AS_TINKER`` is set (see
``tinkex._alias.install_from_environment``), so interpreters that do not ask pay nothing.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HOOK = Path(__file__).parent / "tinkex" / "_alias" / "tinkex-as-tinker.pth"


class BuildPyWithStartupHook(build_py):
    """``build_py`` that also puts the ``.pth`` hook at the top of the installed tree."""

    def run(self) -> None:
        super().run()
        # A wheel is built from build_lib. An editable install (PEP 660) keeps the sources in
        # place and packs the install tree instead, which setuptools points install_lib at.
        editable = getattr(self, "editable_mode", False)
        target = self.get_finalized_command("install").install_lib if editable else self.build_lib
        self.copy_file(str(HOOK), str(Path(target) / HOOK.name))


setup(cmdclass={"build_py": BuildPyWithStartupHook})
