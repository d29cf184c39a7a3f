"""The integer lists users type (`0-7`, `0,3,5-9`, `42`): parsed, and written back for file names."""
from __future__ import annotations

import hashlib
from typing import Sequence

from .errors import UserError


def parse_int_list(text: str, what: str = "value", limit: int | None = None) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]. Order is kept, duplicates dropped; ranges are inclusive and
    must run upwards. Raises UserError naming `what` on anything else (empty, '7-3', 'x').
    limit: the most values the list may hold; a longer list is refused, its size counted before
    any range is expanded (so '0-99999999999' costs nothing), in time linear in the list."""
    out: list[int] = []
    seen: set[int] = set()
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise UserError(f"{what}: empty selection; give numbers or ranges like 0-7 or 0,3,5-9.")
    for part in parts:
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise UserError(f"{what}: range {part!r} runs backwards; write {b}-{a}.")
            else:
                a = b = int(part)
        except ValueError:
            raise UserError(f"{what}: {part!r} is not a number or range like 0-7.") from None
        if a < 0:
            raise UserError(f"{what}: {a} is negative.")
        if limit is not None:        # counted, not expanded, when the range alone is too long
            size = b - a + 1
            new = size if size > limit else sum(v not in seen for v in range(a, b + 1))
            if len(out) + new > limit:
                raise UserError(f"{what}: {len(out) + new} values; at most {limit}.")
        for v in range(a, b + 1):
            if v not in seen:
                seen.add(v)
                out.append(v)
    return out


def format_int_list(values: Sequence[int], max_chars: int | None = 40) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7' (what parse_int_list reads back); order is kept.
    Text longer than `max_chars` (file names: 40) becomes 'n<count>-<hash>'; None keeps it all
    (records: a range costs a few characters however many values it holds)."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if j == i else f"{values[i]}-{values[j]}")
        i = j + 1
    text = ",".join(parts)
    if max_chars is not None and len(text) > max_chars:
        text = f"n{len(values)}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return text
