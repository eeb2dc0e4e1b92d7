"""mzc: gzip for microscopy. Compress TIFF stacks into .mzc files, decode any region, measure what was lost."""
__version__ = "0.1.0"

from .errors import MzcError  # noqa: E402
from .files import decode, encode, info, open, verify  # noqa: E402,A004
from .stackwriter import StackWriter, recover  # noqa: E402

__all__ = ["MzcError", "StackWriter", "__version__", "decode", "encode", "info", "open", "recover", "verify"]
