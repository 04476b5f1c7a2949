"""halnav's version: the one place it is written (``pyproject.toml``, ``halnav.__version__``,
the ``User-Agent`` and ``--version`` read it from here)."""

__version__ = "0.1.0"
