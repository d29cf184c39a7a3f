"""The error types for mistakes a user can fix; the CLI prints each as one line."""
from __future__ import annotations

import os
import re
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


class WriteError(UserError):
    """A file that could not be written (disk full, read-only folder). The message names the
    file and the system's reason (`No space left on device`), then what to do: `then`, or by
    default free space or choose another folder. `path` and `reason` let a caller that knows
    more (what was kept, what to run next) say it in a new WriteError."""

    def __init__(self, path: Any, reason: str, then: str | None = None):
        self.path, self.reason = path, reason
        super().__init__(f"could not write {path} ({reason}); "
                         f"{then or 'free space or choose another output folder.'}")


def os_reason(e: BaseException) -> str:
    """The system's words for a failed write: an OSError's strerror (`No space left on
    device`), or the `os error N` that a library (safetensors) quotes in its own message."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    found = re.search(r"os error (\d+)", str(e))
    return os.strerror(int(found.group(1))) if found else first_line(e)
