"""kdr: recipes for smaller, faster models. The command line lives in :mod:`kdr.cli`."""

__version__ = "0.1.0"
__all__ = ["__version__"]
