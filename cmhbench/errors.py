"""The one exception type for errors a user can cause.

The CLI prints its message on one line, without a traceback, and exits non-zero. Messages name the
file, key, option or value that was wrong and say what was expected.
"""


class CmhbenchError(Exception):
    """A user-facing error: bad input, unknown name, missing file, wrong option."""
