"""The package version, in one place below every module (pyproject.toml reads it from here)."""

__version__ = "0.1.0"
