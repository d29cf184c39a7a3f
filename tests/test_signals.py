"""SIGTERM (timeout, Slurm, Ray) and SIGHUP (the terminal closed) stop discover like Ctrl-C:
checkpoint, 'interrupted', exit 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from tests.support import TINY_EVAL_ARGS, default_hangup, signal_when_logged

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ["SIGTERM", "SIGHUP"]


def discover_args(model: Path, out: Path, steps: int = 200) -> list[str]:
    return ["discover", "-c", "207", "--model", str(model), "--steps", str(steps), "--batch-size",
            "1", "--ndirs", "4", "--checkpoint-every", "1000", "--eval-every", "1000", "--device",
            "cpu", "--threads", "1", "-q", *TINY_EVAL_ARGS, "--out", str(out)]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, small_biggan_dir) -> dict[str, tuple[int, str, list[Path], Path]]:
    """One real discover process per signal, started together (on two cores they start in the
    time of one), each sent its signal once it has logged a few steps: signal name ->
    (exit status, stderr, its log files, its --out folder)."""
    procs = {}
    for sig in SIGNALS:
        out = tmp_path_factory.mktemp(sig)
        procs[sig] = out, subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), *discover_args(small_biggan_dir, out)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=default_hangup)
    try:
        with ThreadPoolExecutor(len(procs)) as pool:          # each signalled when it is ready
            logs = {sig: pool.submit(signal_when_logged, proc, out, getattr(signal, sig))
                    for sig, (out, proc) in procs.items()}
        stopped = {}
        for sig, (out, proc) in procs.items():
            _, err = proc.communicate(timeout=120)
            stopped[sig] = proc.returncode, err, logs[sig].result(), out
        return stopped
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("sig", SIGNALS)
def test_cli_sigterm_saves_a_checkpoint_and_exits_130(stopped, small_biggan_dir, sig):
    returncode, err, logs, out = stopped[sig]
    assert returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    folder = logs[0].parent
    step = torch.load(folder / "checkpoint.pt", weights_only=True)["step"]
    assert 3 <= step < 200
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted" and record["step"] == step
    assert not (folder / ".lock").exists()
    logged = (folder / "log.csv").read_text().splitlines()
    assert int(logged[-1].split(",")[0]) == step                # the log ends at the checkpoint
    resumed = CliRunner().invoke(cli, [*discover_args(small_biggan_dir, out, step + 2), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"finished at step {step + 2}" in resumed.output


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sighup_ends_cleaning_work_like_ctrl_c_unless_ignored_by_nohup():
    from biggan_directions.runtime.signals import sigterm_as_interrupt, stop_flag

    unhandled: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda *a: unhandled.append(1))  # not this test's end
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigterm_as_interrupt():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(1)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert unhandled == []
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)      # started under nohup
    try:
        with stop_flag() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)
            assert not stop.is_set()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
