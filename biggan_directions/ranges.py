"""The integer lists users type (`0-7`, `0,3,5-9`, `42`): parsed, and written back for file names."""
from __future__ import annotations

import hashlib
from typing import Sequence

from .errors import UserError


def parse_int_list(text: str, what: str = "value") -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]. Order is kept, duplicates dropped; ranges are inclusive and
    must run upwards. Raises UserError naming `what` on anything else (empty, '7-3', 'x')."""
    out: list[int] = []
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
                values = range(a, b + 1)
            else:
                values = [int(part)]
        except ValueError:
            raise UserError(f"{what}: {part!r} is not a number or range like 0-7.") from None
        for v in values:
            if v < 0:
                raise UserError(f"{what}: {v} is negative.")
            if v not in out:
                out.append(v)
    return out


def format_int_list(values: Sequence[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7' (what parse_int_list reads back); order is kept.
    Lists whose text would be longer than 40 characters become 'n<count>-<hash>'."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if j == i else f"{values[i]}-{values[j]}")
        i = j + 1
    text = ",".join(parts)
    if len(text) > 40:
        text = f"n{len(values)}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return text
