"""The one error type for mistakes a user can fix; the CLI prints its message as one line."""


class UserError(Exception):
    """A problem the user can fix (bad option, missing file, ...). Its message is one line that
    says what is wrong and what to do; the CLI shows it without a traceback and exits 1."""
