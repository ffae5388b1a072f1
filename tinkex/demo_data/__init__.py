"""Data files of ``python -m tinkex.demo`` (``qa.json``), read with ``importlib.resources``."""
