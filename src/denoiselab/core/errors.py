"""The one exception family for problems with what a user asked for or gave: a path, a setting, a
file. Entry points print these as one line (exit code 2) instead of a traceback; everything else is a
bug and keeps its traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A problem the user can fix; the message names it and, where possible, the fix."""
