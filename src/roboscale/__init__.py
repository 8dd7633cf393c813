"""roboscale: measure, fit and forecast scaling laws for robot learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("roboscale")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
