"""ImageNet class lookup: the shipped table, resolve_class, search_classes and `classes` CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import UserError
from biggan_directions.models.classes import (ImageNetClass, all_classes, class_meta, normalize,
                                              resolve_class, search_classes, suggest)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the table
def test_table_has_1000_unique_indices_in_order():
    rows = all_classes()
    assert len(rows) == 1000
    assert [c.index for c in rows] == list(range(1000))
    assert len({c.wnid for c in rows}) == 1000
    assert all(len(c.wnid) == 9 and c.wnid[0] == "n" and c.wnid[1:].isdigit() for c in rows)
    assert all(c.names and all(n and n == n.strip() for n in c.names) for c in rows)


def test_table_known_rows():
    rows = all_classes()
    assert rows[0] == ImageNetClass(0, "n01440764", ("tench", "Tinca tinca"))
    assert rows[207] == ImageNetClass(207, "n02099601", ("golden retriever",))
    assert rows[497].wnid == "n03028079" and rows[497].name == "church"
    assert rows[999].wnid == "n15075141"


def test_all_classes_returns_a_copy():
    rows = all_classes()
    rows.clear()
    assert len(all_classes()) == 1000


def test_name_and_slug():
    c = resolve_class(207)
    assert c.name == "golden retriever"
    assert c.slug == "golden-retriever"
    assert resolve_class(208).slug == "labrador-retriever"


# ---------------------------------------------------------------- resolve_class
@pytest.mark.parametrize("query", [207, "207", " 207 ", "n02099601", "N02099601", "golden retriever",
                                   "Golden Retriever", "golden_retriever", "golden-retriever",
                                   "  GOLDEN   retriever  "])
def test_resolve_golden_retriever(query):
    assert resolve_class(query).index == 207


@pytest.mark.parametrize("query, index", [
    ("church", 497), ("church building", 497), ("Tinca tinca", 0), ("tench", 0),
    (0, 0), (999, 999), ("goldfish", 1), ("three-toed sloth", 364), ("three toed sloth", 364),
    ("Labrador_Retriever", 208),
])
def test_resolve_names_and_synonyms(query, index):
    assert resolve_class(query).index == index


def test_normalize():
    assert normalize("  Golden_Retriever ") == "golden retriever"
    assert normalize("three-toed   sloth") == "three toed sloth"
    assert normalize("jack-o'-lantern") == "jack o lantern"
    assert resolve_class("jack o lantern").index == resolve_class("jack-o'-lantern").index


@pytest.mark.parametrize("query, indices", [("crane", (134, 517)), ("maillot", (638, 639)),
                                            ("Panda", (387, 388))])
def test_ambiguous_name_lists_candidates(query, indices):
    with pytest.raises(UserError) as e:
        resolve_class(query)
    msg = str(e.value)
    assert "\n" not in msg and "ambiguous" in msg and "index" in msg
    for i in indices:
        c = all_classes()[i]
        assert f"{c.index} {c.wnid} {c.name}" in msg


def test_typo_suggests_the_class():
    with pytest.raises(UserError) as e:
        resolve_class("golden retreiver")
    msg = str(e.value)
    assert msg.startswith("unknown class 'golden retreiver'; did you mean: golden retriever (207)")
    assert "biggan-directions classes 'golden retreiver'" in msg and "\n" not in msg


def test_substring_suggestions_capped_at_five():
    with pytest.raises(UserError) as e:
        resolve_class("retriever")
    msg = str(e.value)
    assert msg.count("(") - msg.count("(run") == 5
    for i in (205, 206, 207, 208, 209):
        assert f"({i})" in msg
    assert [c.index for _, c in suggest("retriever")] == [207, 208, 205, 206, 209]
    assert suggest("zzzzqqq") == [] and suggest("  ") == []


def test_unknown_name_without_suggestions():
    with pytest.raises(UserError, match=r"unknown class 'zzzzqqq'; run `biggan-directions classes`"):
        resolve_class("zzzzqqq")


@pytest.mark.parametrize("query", [1000, -1, "1000", "-1", "12345"])
def test_index_out_of_range(query):
    with pytest.raises(UserError, match=r"out of range; ImageNet classes are numbered 0-999"):
        resolve_class(query)


def test_unknown_wnid():
    with pytest.raises(UserError, match=r"WordNet id 'n09999999' is not one of the 1000"):
        resolve_class("n09999999")


@pytest.mark.parametrize("query", ["", "   ", "__", None, 2.5, True])
def test_empty_or_wrong_type(query):
    with pytest.raises(UserError):
        resolve_class(query)


# ---------------------------------------------------------------- search_classes
def test_search_all():
    assert search_classes(None) == all_classes()
    assert search_classes("  ") == all_classes()


def test_search_by_index_wnid_and_name():
    assert [c.index for c in search_classes("207")] == [207]
    assert search_classes("1000") == []
    assert [c.index for c in search_classes("n02099601")] == [207]
    assert {c.index for c in search_classes("n0209960")} == {207}
    assert [c.index for c in search_classes("retriever")] == [205, 206, 207, 208, 209]
    assert [c.index for c in search_classes("RETRIEVER")] == [205, 206, 207, 208, 209]
    assert [c.index for c in search_classes("golden_retriever")] == [207]
    assert search_classes("zzzzqqq") == []


def test_search_ranks_exact_then_prefix():
    found = [c.index for c in search_classes("church")]
    assert found[0] == 497
    crane = [c.index for c in search_classes("crane")]
    assert crane[:2] == [134, 517]
    # 'goldfish' (1) is an exact name, 'goldfinch' (11) only a prefix match of 'gold'.
    gold = [c.index for c in search_classes("gold")]
    assert gold.index(1) < gold.index(207) and 11 in gold


# ---------------------------------------------------------------- CLI
def test_cli_classes_query():
    r = CliRunner().invoke(cli, ["classes", "retriever"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["index", "wnid", "names"]
    assert len(lines) == 1 + 5
    assert lines[3].split(None, 2) == ["207", "n02099601", "golden retriever"]


def test_cli_classes_unquoted_words():
    r = CliRunner().invoke(cli, ["classes", "golden", "retriever"])
    assert r.exit_code == 0 and r.output.splitlines()[1].split()[0] == "207"


def test_cli_classes_all():
    r = CliRunner().invoke(cli, ["classes"])
    assert r.exit_code == 0
    rows = r.output.splitlines()[1:]
    assert len(rows) == 1000
    assert [int(line.split()[0]) for line in rows] == list(range(1000))


def test_cli_classes_no_match():
    r = CliRunner().invoke(cli, ["classes", "zzzzqqq"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "Error: no class matches 'zzzzqqq'; run `biggan-directions classes` to list all 1000"]
    assert "Traceback" not in r.output


def test_cli_classes_typo_suggests():
    r = CliRunner().invoke(cli, ["classes", "golden retreiver"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "did you mean: golden retriever (207)" in r.output


def test_cli_classes_help():
    r = CliRunner().invoke(cli, ["classes", "--help"])
    assert r.exit_code == 0
    assert "biggan-directions classes retriever" in r.output and "QUERY" in r.output


def test_classes_module_does_not_import_torch():
    """classes.py itself stays torch-free (imported without the package __init__)."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('biggan_directions', "
        f"{str(ROOT / 'biggan_directions' / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(ROOT / 'biggan_directions')!r}])\n"
        "sys.modules['biggan_directions'] = importlib.util.module_from_spec(spec)  # __init__ not run\n"
        "from biggan_directions.models.classes import resolve_class\n"
        "assert resolve_class('golden retriever').index == 207\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_class_meta_is_what_a_run_records_of_its_class():
    assert class_meta("biggan-deep-128", resolve_class(207)) == {
        "model": "biggan-deep-128", "class_index": 207, "class_name": "golden retriever",
        "wnid": "n02099601"}
