"""One exception type for everything a user can get wrong; the CLI prints it as `mzc: error: ...`."""


class MzcError(Exception):
    """A user-facing error: bad input, corrupt file, unmet target. Its message is one line."""
