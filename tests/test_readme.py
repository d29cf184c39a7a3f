"""The README is tested as written: every command line in its code blocks runs, in order, as typed.

The commands run in one scratch folder (as a user typing them in order would), with the default
model name resolved to a small random BigGAN through the weights store (BIGGAN_DIRECTIONS_WEIGHTS
holds it under biggan-deep-128): the tests' small model with a 48-dimensional latent (README_Z),
as the README's commands need 40 coordinates (`--subspace 0-39 --ndirs 40`), and every run's
fixed evaluation and every score measures one direction per coordinate. LPIPS backbones where torchvision looks for them
($TORCH_HOME), and the files the README tells the user to have (a classes file, a hand-downloaded
checkpoint). The only thing added to a command is a budget (a few steps, a small evaluation,
few frames), appended at its end: click takes the last value of a repeated option. `--model`
is never added. A command the test does not know how to run fails the suite, so the README
cannot hold a command that nobody ran.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from biggan_directions.cli import cli
from tests.support import SMALL_CONFIG, build_small_biggan, serve_once, write_backbone_checkpoint

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Appended to each command: budgets only (steps, evaluation, samples, frames, seeds). A method's
# budget goes only to the commands that run that method (an option a method does not read is
# refused, exit 2).
DISCOVER_BUDGET = ["--eval-per-direction", "1", "--eval-references", "2", "--eval-k", "2", "-q"]
METHOD_BUDGETS = {"hessian": ["--steps", "2", "--batch-size", "2"], "sefa": [],
                  "ganspace": ["--samples", "200"]}
BUDGETS = {
    "discover": DISCOVER_BUDGET,
    "batch": DISCOVER_BUDGET,
    "render": ["--frames", "4", "-q"],
    "score": ["--num-seeds", "2", "--steps", "3", "-q"],
    "describe": ["--num-seeds", "2", "--steps", "3", "-q"],
    "compare": ["-q"],
}
ASSIGNMENT = re.compile(r"([A-Z_]+)=(\S+)(\s+#.*)?$")   # RUN=outputs/...  # a comment
WITH = {"--score": ["--score-seeds", "2"], "--render": ["--render-frames", "4", "--render-seeds", "0-1"]}
README_Z = 48                         # the README model's latent (and class embedding) size
SERVES = "view"                      # started, asked for its page once, stopped (unless --save)


def readme_commands(text: str) -> list[str]:
    """Every command line in the README's code blocks (indented or fenced, not ```python):
    `biggan-directions ...`, `make ...` and `NAME=value` settings, with `\\` continuations
    joined and trailing comments kept (shlex drops them)."""
    lines, fenced, language = [], False, ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            fenced, language = (not fenced), raw[3:].strip()
            continue
        if fenced and language not in ("", "sh", "bash", "shell", "console"):
            continue
        if fenced or raw.startswith("    "):
            lines.append(raw.strip())
    commands, pending = [], ""
    for line in lines:
        line = pending + line
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if re.match(r"(biggan-directions|make)\b", line) or ASSIGNMENT.match(line):
            commands.append(line)
    return commands


@pytest.fixture()
def user_machine(tmp_path, monkeypatch):
    """A scratch folder with the weights store, LPIPS backbones and the README's inputs."""
    from biggan_directions.models.weights import WEIGHTS_DIR_ENV, import_weights, save_biggan

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    model = save_biggan(build_small_biggan(config=dict(SMALL_CONFIG, z_dim=README_Z,
                                                       class_embed_dim=README_Z)),
                        tmp_path / "model")
    store = work / "weights"
    import_weights(model / "pytorch_model.bin", "biggan-deep-128", weights_dir=store,
                   config=model / "config.json")
    downloads = home / "Downloads"                        # `weights import` reads from here
    downloads.mkdir(parents=True)
    shutil.copy(model / "pytorch_model.bin", downloads / "biggan-deep-256-pytorch_model.bin")
    shutil.copy(model / "config.json", downloads / "biggan-deep-256-config.json")
    torch_home = tmp_path / "torch-home"
    for net in ("alex", "squeeze"):
        write_backbone_checkpoint(torch_home / "hub" / "checkpoints", net)
    (work / "classes.txt").write_text("207\nchurch\n")     # `batch --classes-file classes.txt`
    for name, value in {"HOME": str(home), WEIGHTS_DIR_ENV: str(store),
                        "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1",
                        "BIGGAN_DIRECTIONS_HUB_REPO": "", "BIGGAN_DIRECTIONS_BASE_URL":
                        "http://127.0.0.1:9/", "BIGGAN_DIRECTIONS_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(work)
    return work


def test_readme_collects_the_quick_start_and_every_command():
    commands = readme_commands(README.read_text())
    assert 'make discover CLASS="golden retriever"' in commands[0]
    assert 'biggan-directions discover --class church' in commands     # no --model: the default
    for command in ("classes", "discover", "render", "score", "compare", "view", "batch", "weights"):
        assert any(c.startswith(f"biggan-directions {command}") for c in commands), command


def test_every_readme_command_runs_as_typed(user_machine):
    variables: dict[str, str] = {}
    failures = []
    for line in readme_commands(README.read_text()):
        m = ASSIGNMENT.match(line)
        if m:
            variables[m.group(1)] = m.group(2)
            continue
        t0 = time.perf_counter()
        try:
            outcome = run_command(line, variables, user_machine)
        except Exception as e:                  # noqa: BLE001 - report every command, then fail
            outcome = f"{type(e).__name__}: {e}"
        if outcome is not None:
            failures.append(f"$ {line}\n{outcome}")
        print(f"{time.perf_counter() - t0:7.1f} s  {line[:110]}")
    assert not failures, "README commands that failed:\n\n" + "\n\n".join(failures)


def run_command(line: str, variables: dict[str, str], cwd: Path) -> str | None:
    """Run one README line; None when it worked, else what went wrong."""
    argv = shlex.split(line, comments=True)
    argv = [re.sub(r"\$([A-Z_]+)", lambda m: variables[m.group(1)], a) for a in argv]
    argv = [os.path.expanduser(a) for a in argv]
    if argv[:2] == ["make", "test"]:
        return None                             # the suite itself, running now
    if argv[0] == "make":
        argv = make_recipe(argv)
        if argv is None:
            return f"not a make target the test runs: {line}"
    if argv[0] != "biggan-directions":
        return f"not a command the test runs: {line}"
    args = argv[1:]
    command = args[0]
    if command == SERVES and "--save" not in args:
        return fetch_page_once(args)
    args = args + BUDGETS.get(command, []) + method_budget(command, args)
    if command == "batch":                      # budgets of the stages the command asks for
        args += [b for flag, budget in WITH.items() if flag in args for b in budget]
    return failure(CliRunner().invoke(cli, args, catch_exceptions=True))


def failure(result) -> str | None:
    """None when a CliRunner result exited 0, else its exit code, output and traceback."""
    if result.exit_code != 0:
        import traceback
        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info and \
            not isinstance(result.exception, SystemExit) else ""
        return f"exit {result.exit_code}\n{result.output[-2000:]}{detail[-3000:]}"
    return None


def method_budget(command: str, args: list[str]) -> list[str]:
    """The budgets of the methods a discover or batch command runs (--method, --methods)."""
    if command not in ("discover", "batch"):
        return []
    methods = ["hessian"]
    for flag in ("--method", "--methods"):
        if flag in args:
            methods = args[args.index(flag) + 1].split(",")
    return [b for m in dict.fromkeys(methods) for b in METHOD_BUDGETS[m]]


def make_recipe(argv: list[str]) -> list[str] | None:
    """The command line `make` would run for `make discover ...` (dry run, from the repository),
    with its program taken as `biggan-directions`; None for other targets."""
    if len(argv) < 2 or argv[1] != "discover":
        return None
    done = subprocess.run(argv[:1] + ["-n", "-s", "-C", str(ROOT)] + argv[1:] + ["STAMP=/dev/null"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    line = [l for l in done.stdout.splitlines() if "biggan-directions discover" in l][-1]
    recipe = shlex.split(line)
    assert recipe[0].endswith("/biggan-directions"), recipe
    return ["biggan-directions"] + recipe[1:]


def fetch_page_once(args: list[str]) -> str | None:
    """Run `view` as the other commands run (CliRunner, this process), serving until the URL it
    printed has been fetched once (support.serve_once); None when the page came back."""
    if "--port" not in args:
        args = args + ["--port", "0"]           # the README's default port may be taken here

    def fetch(printed: str) -> str | None:
        m = re.search(r"https?://[\w.\[\]:]+/\S*", printed)
        if m is None:
            return "no URL printed:\n" + printed
        with urllib.request.urlopen(m.group(0), timeout=60) as page:
            body = page.read().decode()
        return None if page.status == 200 and "<html" in body.lower() else \
            f"{m.group(0)}: status {page.status}"

    result, fetched = serve_once(cli, args, fetch)
    return failure(result) or (fetched[0] if fetched else "view never served:\n" + result.output)
