"""The CLI as a whole: every command teaches through --help; failures are one line."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from tests.support import TINY_EVAL_ARGS

COMMANDS = ["classes", "discover", "render", "score", "batch"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.output or f"biggan-directions {command}" in result.output
    assert "Examples:" in result.output and "biggan-directions " + command in result.output


def test_group_help_lists_every_command_and_version():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    version = CliRunner().invoke(cli, ["--version"])
    assert version.exit_code == 0 and "0.1.0" in version.output


def test_unknown_command_and_option_are_one_clear_error():
    result = CliRunner().invoke(cli, ["discovr"])
    assert result.exit_code == 2 and "No such command" in result.output
    result = CliRunner().invoke(cli, ["discover", "--class", "207", "--stpes", "3"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_nan_penalty_through_the_cli_stops_cleanly(tmp_path, small_biggan_dir, monkeypatch):
    from biggan_directions.models.generator import BigGANGenerator

    forward = BigGANGenerator.forward
    calls = {"n": 0}

    def poisoned(self, z):                                   # NaN from the 3rd training step on
        calls["n"] += torch.is_grad_enabled()                # (the 1st call counts FLOPs)
        out = forward(self, z)
        return out * float("nan") if calls["n"] >= 4 else out
    monkeypatch.setattr(BigGANGenerator, "forward", poisoned)
    result = CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                      "--steps", "5", "--batch-size", "1", "--ndirs", "4",
                                      "--checkpoint-every", "1", "--out", str(tmp_path), "-q",
                                      *TINY_EVAL_ARGS])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "nan at step 3" in result.output and "(step 2) is kept" in result.output
    folder = next(tmp_path.glob("*/207-golden-retriever"))
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["step"] == 2
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


def test_readme_says_which_mistakes_exit_1_and_which_exit_2():
    """README's promise about mistakes matches the CLI: a mistake in a value is one `Error:` line
    and exit 1; an option the parser refuses gets click's usage line, one `Error:` line, exit 2."""
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = " ".join(readme.read_text(encoding="utf-8").split())
    assert "prints one `Error: ...` line that says what to do, exits 1" in text
    assert "prints click's usage line, then one `Error: ...` line, and exits 2" in text

    value = CliRunner().invoke(cli, ["classes", "no such class at all"])
    assert value.exit_code == 1
    assert [line[:7] for line in value.output.strip().splitlines()] == ["Error: "]
    for args in (["render", "--frames", "x"], ["render", "--dirs", "7-3"],
                 ["render", "--seeds", "0-99999999999"], ["score", "RUN", "--stpes", "3"],
                 ["discover", "--method", "pca", "-c", "207"],
                 ["batch", "--classes", "207", "--method", "pca"]):
        usage = CliRunner().invoke(cli, args)
        lines = usage.output.strip().splitlines()
        assert usage.exit_code == 2, (args, usage.output)
        assert lines[0].startswith("Usage: ") and lines[-1].startswith("Error: ")
        assert sum(line.startswith("Error: ") for line in lines) == 1


def test_defaults_are_written_once():
    """Options take their defaults from the library (config fields, function signatures), and
    precision/compile are one declaration with one help text in every command."""
    from biggan_directions.cli.options import param_default
    from biggan_directions.media.render import RenderConfig
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.scoring.compare import compare_runs
    from biggan_directions.scoring.score import ScoreConfig
    from biggan_directions.view.view_app import serve

    assert param_default(compare_runs, "top") == 6 and param_default(serve, "port") == 7860
    with pytest.raises(TypeError):
        param_default(compare_runs, "paths")
    for name in ("precision", "compile"):
        fields = [{f.name: f for f in cls.__dataclass_fields__.values()}[name]
                  for cls in (DiscoverConfig, RenderConfig, ScoreConfig)]
        assert len({(f.default, f.metadata["help"]) for f in fields}) == 1
    helps = [CliRunner().invoke(cli, [command, "--help"]).output for command in
             ("discover", "render", "score")]
    assert all("--precision [auto|fp32|tf32|bf16]" in text for text in helps)
