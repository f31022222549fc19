"""crossmargin: nightly vectorized Classic/Pro cross-margin risk job."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crossmargin")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
