"""The error types for mistakes a user can fix; the CLI prints each as one line."""
from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad option, missing file, ...). Its message is one line that
    says what is wrong and what to do; the CLI shows it without a traceback and exits 1."""


class SettingError(UserError):
    """A setting with a bad value. The library names the setting by its field name (`path_size`)
    and, when the value was not given by the caller, where it came from (`source`, e.g. the
    directions file it was recorded in); the CLI words it with the option name (`--path-size`)
    when the user typed it, and keeps the source otherwise. Library errors name no CLI flag."""

    def __init__(self, setting: str, value: Any, reason: str, source: str | None = None):
        self.setting, self.value, self.reason, self.source = setting, value, reason, source
        super().__init__(self.describe(setting))

    def describe(self, name: str) -> str:
        """The one-line message with the setting called `name` (a field or an option name)."""
        where = f" (recorded in {self.source})" if self.source else ""
        return f"{name} {self.value!r}{where}: {self.reason}"


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type name when empty), for one-line
    errors that wrap a library's error; long lines are cut to `limit` characters."""
    lines = str(e).strip().splitlines()
    text = lines[0].rstrip(":") if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
