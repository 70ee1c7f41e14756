"""The package's version number, readable without importing the package."""

__version__ = "0.1.0"
