"""The Academic Records API."""

__version__ = "0.1.0"
