"""The one exception family for problems with what a user asked for or gave: a path, a setting, a
file. Entry points print these as one line (exit code 2) instead of a traceback; everything else is a
bug and keeps its traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A problem the user can fix; the message names it and, where possible, the fix."""


#: Plain errors that our checks raise for bad input (paths, values, missing extras).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, ImportError)


def user_error_of(exc: BaseException) -> BaseException | None:
    """The user error behind an exception, if any: a UserError, or a plain built-in error from the list
    above, also when a framework wrapped it (Hydra's InstantiationException keeps it as its cause)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, UserError) or (isinstance(e, USER_ERRORS) and type(e).__module__ == "builtins"):
            return e
        e = e.__cause__ or e.__context__
    return None
