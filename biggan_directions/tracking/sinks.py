"""Where events go: a TensorBoard event folder or a Weights & Biases run, behind one small interface.

Logging is never worth a run: the first write that fails (a full disk, an unwritable folder, a
W&B service that died) turns that sink off with one line to `notify`, and training goes on.
Both sinks take the same calls: scalars(values, step), image(tag, (H, W, 3) uint8, step),
histogram(tag, values, step), hparams(settings, metrics, step), flush(), close().
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..foundation.errors import SettingError, first_line, os_reason

Notify = Callable[[str], None]
WANDB_INSTALL = "pip install 'biggan-directions[wandb]'"


def _reason(e: BaseException) -> str:
    return os_reason(e) if isinstance(e, OSError) else first_line(e)


class Sink:
    """One destination; `alive` is False once a write failed (it then ignores every call)."""

    what, verb = "events", "stopped"

    def __init__(self, where: Path | str, notify: Notify, goes_on: str):
        self.where, self.notify, self.goes_on, self.alive = where, notify, goes_on, True

    def _guard(self, action: Callable[[], Any]) -> None:
        if not self.alive:
            return
        try:
            action()
        except Exception as e:  # noqa: BLE001 - any failure of a logger stops the logger, not the run
            self.alive = False
            self.notify(f"{self.where}: {self.what} {self.verb} ({_reason(e)}); {self.goes_on}")
            self._abandon()

    def _abandon(self) -> None:
        """Release what the sink holds after a failure, quietly."""


class TensorBoardSink(Sink):
    """RUN/tb/ through torch.utils.tensorboard.SummaryWriter. purge_step: on resume, the first
    step redone (the checkpoint's step + 1): TensorBoard drops the older files' events from that
    step on, so each step is shown once."""

    what = "TensorBoard events"

    def __init__(self, folder: Path, notify: Notify, goes_on: str, purge_step: int | None = None,
                 suffix: str = ""):
        super().__init__(folder, notify, goes_on)
        self.writer = None

        def open_writer():
            from torch.utils.tensorboard import SummaryWriter   # deferred: loads tensorboard
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.write_bytes(b"")                  # SummaryWriter would fail later, in a thread
            probe.unlink()
            self.writer = SummaryWriter(str(folder), purge_step=purge_step, flush_secs=30,
                                        filename_suffix=suffix)
        self._guard(open_writer)

    def scalars(self, values: Mapping[str, float | None], step: int) -> None:
        def write():
            for tag, value in values.items():
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(tag, float(value), step)
        self._guard(write)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self._guard(lambda: self.writer.add_image(tag, image, step, dataformats="HWC"))

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            self._guard(lambda: self.writer.add_histogram(tag, values, step))

    def hparams(self, settings: Mapping[str, Any], metrics: Mapping[str, float | None],
                step: int) -> None:
        """The hparams plugin's summaries in this folder (add_hparams would open a sub-folder):
        one row of TensorBoard's hparams table per run, the metrics as scalars beside it."""
        def write():
            from torch.utils.tensorboard.summary import hparams   # deferred: tensorboard
            numbers = {k: float(v) for k, v in metrics.items()
                       if v is not None and math.isfinite(v)}
            for summary in hparams(hparam_values(settings), numbers):
                self.writer.file_writer.add_summary(summary)
            for tag, value in numbers.items():
                self.writer.add_scalar(tag, value, step)
        self._guard(write)

    def flush(self) -> None:
        self._guard(lambda: self.writer.flush())

    def close(self) -> None:
        self._guard(lambda: self.writer.close())
        self.alive = False

    def _abandon(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the disk that failed the write may fail the close
                pass


def check_wandb(project: str | None) -> None:
    """SettingError (before any work) when a W&B project is asked for and wandb is absent."""
    if project is None:
        return
    try:
        import wandb  # noqa: F401 - deferred, optional: only checked to be importable
    except ImportError:
        raise SettingError("wandb", project, f"needs the wandb package; install it with "
                                             f"{WANDB_INSTALL}, or drop the option.") from None


class WandbSink(Sink):
    """One W&B run per run folder (its files under RUN/wandb/); WANDB_MODE=offline writes them
    with no account and no network (`wandb sync` uploads them later). A failed start (no login,
    no network) is one line and the run trains on without W&B."""

    what = "Weights & Biases"

    def __init__(self, folder: Path, project: str, entity: str | None, name: str,
                 config: Mapping[str, Any], notify: Notify, goes_on: str):
        super().__init__(folder / "wandb", notify, goes_on)
        self.run = None

        def start():
            import wandb   # deferred, optional (check_wandb said it is there)
            (folder / "wandb").mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=project, entity=entity, name=name, dir=str(folder),
                                  config=dict(config), reinit="create_new",
                                  settings=wandb.Settings(silent=True, console="off"))
        self.verb = "could not start"
        self._guard(start)
        self.verb = "logging stopped"

    def scalars(self, values: Mapping[str, float | None], step: int) -> None:
        numbers = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
        if numbers:
            self._guard(lambda: self.run.log(numbers, step=step))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        import wandb
        self._guard(lambda: self.run.log({tag: wandb.Image(image)}, step=step))

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        import wandb
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            self._guard(lambda: self.run.log({tag: wandb.Histogram(values)}, step=step))

    def hparams(self, settings: Mapping[str, Any], metrics: Mapping[str, float | None],
                step: int) -> None:
        def write():
            self.run.config.update(hparam_values(settings), allow_val_change=True)
            self.run.summary.update({k: v for k, v in metrics.items() if v is not None})
        self._guard(write)

    def flush(self) -> None:
        """W&B streams on its own."""

    def close(self) -> None:
        self._guard(lambda: self.run.finish())
        self.alive = False

    def _abandon(self) -> None:
        if self.run is not None:
            try:
                self.run.finish(exit_code=1)
            except Exception:  # noqa: BLE001 - a broken service may fail the finish too
                pass


def hparam_values(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the hparams table takes them: numbers, strings and booleans as they are;
    None as 'none'; lists and tuples as text ('0,40')."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if value is None:
            out[key] = "none"
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(map(str, value))
        else:
            out[key] = str(value)
    return out
