"""ImageNet class lookup (index, WordNet id, name or synonym) from the shipped `data/imagenet_classes.tsv`."""
from __future__ import annotations

import difflib
import functools
import re
import shlex
from dataclasses import dataclass
from importlib import resources

from ..foundation.errors import UserError

NUM_CLASSES = 1000
DATA_FILE = "imagenet_classes.tsv"      # columns: index, wnid, names (', '-separated); one header line
_WNID = re.compile(r"n\d{8}")
_INDEX = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class ImageNetClass:
    """One of the 1000 ImageNet-1k classes BigGAN is conditioned on.

    index: 0-999, the position of the class in BigGAN's one-hot class vector.
    wnid:  WordNet id, 'n' + 8 digits (e.g. 'n02099601').
    names: WordNet lemmas, most common first (e.g. ('golden retriever',)).
    """

    index: int
    wnid: str
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        """The first (most common) name: 'golden retriever'."""
        return self.names[0]

    @property
    def slug(self) -> str:
        """File-name-safe name, as used for run folders: 'golden-retriever'."""
        return slug(self.name)


def class_meta(model: str, cls: ImageNetClass) -> dict[str, object]:
    """What a run records about the generator it learned on: {model, class_index, class_name,
    wnid} (the run's directions file and run.json `meta`; the weights are added beside it)."""
    return {"model": model, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid}


def slug(text: str) -> str:
    """'Golden Retriever' -> 'golden-retriever' (file-name safe)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def normalize(text: str) -> str:
    """Key for name matching: lower case; '_' and '-' as spaces; '.' and "'" dropped; spaces
    collapsed. 'Golden_Retriever ' -> 'golden retriever', "jack-o'-lantern" -> 'jack o lantern'."""
    text = re.sub(r"[_\-]", " ", str(text).lower())
    text = re.sub(r"['.]", "", text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=None)
def _table() -> tuple[ImageNetClass, ...]:
    text = resources.files("biggan_directions").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines()[1:]:          # skip the header
        if not line.strip():
            continue
        index, wnid, names = line.split("\t")
        rows.append(ImageNetClass(int(index), wnid, tuple(n.strip() for n in names.split(", "))))
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def _by_name() -> dict[str, tuple[ImageNetClass, ...]]:
    """Normalised name -> the classes carrying it (several for e.g. 'crane': 134 and 517)."""
    out: dict[str, list[ImageNetClass]] = {}
    for c in _table():
        for n in dict.fromkeys(normalize(n) for n in c.names):   # once per class, order kept
            out.setdefault(n, []).append(c)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=None)
def _by_wnid() -> dict[str, ImageNetClass]:
    return {c.wnid: c for c in _table()}


def count_classes(n: int) -> str:
    """A count of classes as the tool prints it: '1 class', '0 classes', '3 classes'."""
    return f"{n} class" if n == 1 else f"{n} classes"


def all_classes() -> list[ImageNetClass]:
    """The 1000 classes in index order (read once from the shipped table, then cached)."""
    return list(_table())


def _by_index(index: int) -> ImageNetClass:
    if not 0 <= index < NUM_CLASSES:
        raise UserError(f"class index {index} is out of range; ImageNet classes are numbered "
                        f"0-{NUM_CLASSES - 1}.")
    return _table()[index]


def resolve_class(query: str | int) -> ImageNetClass:
    """Find one class from an index (207 or '207'), a WordNet id ('n02099601') or a name or
    synonym in any case, with '_', '-' and extra spaces ignored ('Golden_Retriever').

    Names must match exactly (after normalising); raises UserError for an index outside 0-999,
    an unknown WordNet id, a name several classes share (listing them: pass the index), or an
    unknown name (with up to five close matches).
    """
    if isinstance(query, bool) or not isinstance(query, (int, str)):
        raise UserError(f"class must be an index 0-{NUM_CLASSES - 1}, a WordNet id or a name, "
                        f"not {query!r}.")
    if isinstance(query, int):
        return _by_index(query)
    text = query.strip()
    if _INDEX.fullmatch(text):
        return _by_index(int(text))
    if _WNID.fullmatch(text.lower()):
        try:
            return _by_wnid()[text.lower()]
        except KeyError:
            raise UserError(f"WordNet id {text!r} is not one of the 1000 ImageNet classes; run "
                            f"`biggan-directions classes` to list them.") from None
    key = normalize(text)
    if not key:
        raise UserError(f"class is empty; give an index 0-{NUM_CLASSES - 1}, a WordNet id "
                        f"or a name (run `biggan-directions classes` to list them).")
    found = _by_name().get(key, ())
    if len(found) == 1:
        return found[0]
    if found:
        listed = "; ".join(f"{c.index} {c.wnid} {c.name}" for c in found)
        raise UserError(f"class name {query!r} is ambiguous: {listed}; pass the index instead "
                        f"(e.g. {found[0].index}).")
    near = suggest(text)
    hint = f"run `biggan-directions classes {shlex.quote(text)}` to search"
    if near:
        listed = ", ".join(f"{name} ({c.index})" for name, c in near)
        raise UserError(f"unknown class {query!r}; did you mean: {listed}? ({hint}).")
    raise UserError(f"unknown class {query!r}; run `biggan-directions classes` to list all "
                    f"{NUM_CLASSES}, or pass an index 0-{NUM_CLASSES - 1}.")


def suggest(query: str, n: int = 5) -> list[tuple[str, ImageNetClass]]:
    """Up to n (name, class) pairs close to `query`, one per class: names containing it
    (prefix first) then similar spellings (difflib, ratio >= 0.6) for typos."""
    key = normalize(query)
    if not key:
        return []
    names = {}                                   # normalised -> (original spelling, classes)
    for c in _table():
        for name in c.names:
            names.setdefault(normalize(name), (name, []))[1].append(c)
    ranked: list[tuple[str, ImageNetClass]] = []
    if len(key) >= 3:
        hits = [k for k in names if key in k]
        hits.sort(key=lambda k: (_rank(k, key), len(k), names[k][1][0].index))
        ranked += [(names[k][0], c) for k in hits for c in names[k][1]]
    for k in difflib.get_close_matches(key, list(names), n=2 * n, cutoff=0.6):
        ranked += [(names[k][0], c) for c in names[k][1]]
    out, seen = [], set()
    for name, c in ranked:
        if c.index not in seen:
            seen.add(c.index)
            out.append((name, c))
    return out[:n]


def _rank(name: str, key: str) -> int:
    """0 exact, 1 prefix, 2 a word starts with key, 3 substring, 4 no match."""
    if name == key:
        return 0
    if name.startswith(key):
        return 1
    if f" {key}" in f" {name}":
        return 2
    return 3 if key in name else 4


def search_classes(query: str | None = None) -> list[ImageNetClass]:
    """Classes matching `query`, best first: None or '' lists all 1000 in index order; an index
    ('207') gives that class; a WordNet id or its prefix ('n020998') matches wnids; anything
    else matches any name containing it, case-insensitively (exact, then prefix, then a word
    starting with it, then substring; ties in index order). [] when nothing matches."""
    if query is None or not str(query).strip():
        return all_classes()
    text = str(query).strip()
    if _INDEX.fullmatch(text):
        i = int(text)
        return [_table()[i]] if 0 <= i < NUM_CLASSES else []
    low = text.lower()
    if re.fullmatch(r"n\d{1,8}", low):
        return [c for c in _table() if c.wnid.startswith(low)]
    key = normalize(text)
    if not key:
        return []
    scored = []
    for c in _table():
        best = min(_rank(normalize(n), key) for n in c.names)
        if best < 4:
            scored.append((best, c.index, c))
    return [c for _, _, c in sorted(scored)]
