"""Class lists as users type them: '0-9,207,church,n03028079', or a file with one class per line."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from ..foundation.errors import UserError, first_line
from ..foundation.ranges import parse_int_list
from .classes import NUM_CLASSES, ImageNetClass, resolve_class

_RANGE = re.compile(r"\d+\s*-\s*\d+")


def resolve_class_items(items: Sequence[tuple[str, str]]) -> list[ImageNetClass]:
    """Resolve (item, where) pairs into classes, in order, duplicates dropped.

    An item is an index ('207'), an inclusive range of indices ('0-9'), a WordNet id
    ('n02099601') or a name ('golden retriever'). `where` names the item in errors (e.g.
    "--classes item 3", "classes.txt line 7"). Raises one UserError for all bad items at once.
    """
    found: list[ImageNetClass] = []
    errors: list[str] = []
    for item, where in items:
        text = item.strip()
        try:
            if _RANGE.fullmatch(text):
                found += [resolve_class(i) for i in parse_int_list(text, where, NUM_CLASSES)]
            else:
                found.append(resolve_class(text))
        except UserError as e:
            message = str(e).rstrip(".")
            errors.append(message if message.startswith(where) else f"{where}: {message}")
    if len(errors) == 1:
        raise UserError(errors[0] + ".")
    if errors:
        shown = " | ".join(errors[:3]) + (f" | ... ({len(errors) - 3} more)" if len(errors) > 3 else "")
        raise UserError(f"{len(errors)} classes could not be resolved: {shown}.")
    if not found:
        raise UserError("no classes given; pass e.g. --classes 0-9,207,church or --classes-file FILE.")
    unique: dict[int, ImageNetClass] = {}
    for c in found:
        unique.setdefault(c.index, c)
    return list(unique.values())


def parse_class_list(text: str, what: str = "--classes") -> list[ImageNetClass]:
    """'0-9,207,church,n03028079' -> classes (see resolve_class_items)."""
    items = [(p, f"{what} item {p.strip()!r}") for p in str(text).split(",") if p.strip()]
    if not items:
        raise UserError(f"{what}: empty; give indices, ranges, WordNet ids or names, e.g. 0-9,207,church.")
    return resolve_class_items(items)


def expand_class_queries(queries: Sequence[str | int]) -> list[tuple[ImageNetClass, str]]:
    """Each class as typed, ranges ('200-299') expanded, duplicates KEPT: (class, the item it
    came from), so a caller that needs every class once (a pooled run) can refuse one given
    twice and say where. Bad items: one UserError for all, as resolve_class_items words it."""
    found: list[tuple[ImageNetClass, str]] = []
    errors: list[str] = []
    for query in queries:
        text = str(query).strip()
        try:
            if _RANGE.fullmatch(text):
                found += [(resolve_class(i), text)
                          for i in parse_int_list(text, f"--class {text}", NUM_CLASSES)]
            else:
                found.append((resolve_class(text), text))
        except UserError as e:
            errors.append(str(e).rstrip("."))
    if len(errors) == 1:
        raise UserError(errors[0] + ".")
    if errors:
        shown = " | ".join(errors[:3]) + (f" | ... ({len(errors) - 3} more)" if len(errors) > 3 else "")
        raise UserError(f"{len(errors)} classes could not be resolved: {shown}.")
    return found


def expand_ranges(queries: Sequence[str | int]) -> list[str]:
    """The queries with each index range ('200-299') written out as its indices ('200', ...);
    other items as given (resolved later, where their errors are worded)."""
    out: list[str] = []
    for query in queries:
        text = str(query).strip()
        if _RANGE.fullmatch(text):
            out += [str(i) for i in parse_int_list(text, f"--class {text}", NUM_CLASSES)]
        else:
            out.append(str(query))
    return out


def read_class_lines(path: str | os.PathLike) -> list[str]:
    """The items of a class file as typed (one per line, '#' comments and blank lines dropped),
    duplicates kept; UserError when it cannot be read or holds none."""
    return [item for item, _ in _class_file_items(path)]


def _class_file_items(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(item, where: '<file> line N') for each item of a class file; UserError when it cannot
    be read or holds none."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--classes-file {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--classes-file {path}: cannot read it ({first_line(e)}).") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if item:
            items.append((item, f"{path.name} line {number}"))
    if not items:
        raise UserError(f"--classes-file {path}: no classes in it (one per line; '#' starts a comment).")
    return items


def read_class_file(path: str | os.PathLike) -> list[ImageNetClass]:
    """Classes from a text file: one item per line (index, range LO-HI, WordNet id or name);
    '#' starts a comment, blank lines are ignored."""
    return resolve_class_items(_class_file_items(path))
