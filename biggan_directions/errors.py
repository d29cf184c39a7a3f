"""The one error type for mistakes a user can fix; the CLI prints its message as one line."""


class UserError(Exception):
    """A problem the user can fix (bad option, missing file, ...). Its message is one line that
    says what is wrong and what to do; the CLI shows it without a traceback and exits 1."""


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type name when empty), for one-line
    errors that wrap a library's error; long lines are cut to `limit` characters."""
    lines = str(e).strip().splitlines()
    text = lines[0].rstrip(":") if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
