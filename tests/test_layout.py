"""The package's layout rule (CONTRIBUTING.md): stages as folders, each importing only from the
folders below it, imports inside functions included; a stage folder's __init__ is a docstring."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "biggan_directions"
# bottom to top; batch and view are siblings: neither imports the other
ORDER = ["foundation", "runtime", "models", "core", "methods", "runs", "media", "tracking",
         "describe", "scoring", "batch", "view", "cli"]
SIBLINGS = {("batch", "view"), ("view", "batch")}


def imported_folders(path: Path) -> list[tuple[int, str]]:
    """(line, stage folder) of every import of the package's own modules in `path`."""
    here = ["biggan_directions", *path.relative_to(PACKAGE).parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            else:
                base = (node.module or "").split(".")
            if base[0] != "biggan_directions":
                continue                           # another project's module
            names = [base[1]] if len(base) > 1 else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("biggan_directions.")]
        else:
            continue
        found += [(node.lineno, n) for n in names if n in ORDER]
    return found


def test_each_folder_imports_only_from_the_folders_below_it():
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()) == sorted(ORDER)
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1:                        # the top level: the public API's lazy map
            continue
        stage = parts[0]
        for line, other in imported_folders(path):
            if other != stage and (ORDER.index(other) > ORDER.index(stage) or (stage, other) in SIBLINGS):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {stage} imports {other}")
    assert wrong == []


def test_stage_folders_hold_no_logic_in_their_init():
    for init in sorted(PACKAGE.glob("*/**/__init__.py")):
        tree = ast.parse(init.read_text())
        kinds = {type(n).__name__ for n in tree.body[1:]}          # after the docstring
        assert isinstance(tree.body[0], ast.Expr) and kinds <= {"ImportFrom", "Assign"}, init
