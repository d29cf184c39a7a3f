"""Parse the integer lists users type: `0-7`, `0,3,5-9`, `42`."""
from __future__ import annotations

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
