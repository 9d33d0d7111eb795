"""The one exception type for user mistakes.

Anything a user can fix (a bad path, a malformed file, an unreachable model)
raises :class:`UserError`; the CLI prints its message and exits non-zero,
without a traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what, where and how."""
