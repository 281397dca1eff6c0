"""CodecShift: a distributed media transcoding cluster that never loses a file."""

from codecshift.version import read_version

__version__ = read_version()

__all__ = ["__version__"]
