"""Where events go: a TensorBoard event folder or a Weights & Biases run, behind one small interface.

TensorBoard events are written in the training thread (EventFile), so a failed write is seen
where it happens. Logging is never worth a run: the first write that fails (a full disk, an
unwritable folder, a W&B service that died) turns that sink off with one line to `notify`, and
training goes on.
Both sinks take the same calls: scalars(values, step), image(tag, (H, W, 3) uint8, step),
histogram(tag, values, step), hparams(settings, metrics, step), flush(), close().
"""
from __future__ import annotations

import io
import itertools
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from ..foundation.errors import SettingError, first_line, os_reason
from .wandb_record import WandbRecord, first_free_step, init_args

Notify = Callable[[str], None]
JPEG_QUALITY = 85             # the logged strips: small events, labels still legible
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


class EventFile:
    """One TensorBoard event file written in this thread (SummaryWriter hands events to a
    thread whose failure, a full disk, would print a traceback and surface late): records
    appended through a buffered file, flushed when asked and every FLUSH_SECONDS. purge_step:
    a SessionLog START at that step, from which TensorBoard drops the older files' events."""

    FLUSH_SECONDS = 20.0
    _count = itertools.count()

    def __init__(self, folder: Path, suffix: str = "", purge_step: int | None = None):
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog   # deferred
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._Event = Event
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(self._count)}{suffix}")
        self.path = folder / name
        self._records = RecordWriter(open(self.path, "ab"))
        self._flushed = time.monotonic()
        try:
            self.add(Event(wall_time=time.time(), file_version="brain.Event:2"))
            if purge_step is not None:
                self.add(Event(wall_time=time.time(), step=purge_step,
                               session_log=SessionLog(status=SessionLog.START)))
            self.flush()
        except BaseException:
            try:
                self._records.close()
            except OSError:                             # the full disk fails the close too
                pass
            raise

    def add(self, event) -> None:
        self._records.write(event.SerializeToString())

    def summary(self, summary, step: int) -> None:
        self.add(self._Event(wall_time=time.time(), step=int(step), summary=summary))
        if time.monotonic() - self._flushed > self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._records.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self._records.close()


class TensorBoardSink(Sink):
    """RUN/tb/, one event file per run (or per resume, or per score or compare). purge_step:
    on resume, the first step redone (the checkpoint's step + 1): TensorBoard drops the older
    files' events from that step on, so each step is shown once."""

    what = "TensorBoard events"

    def __init__(self, folder: Path, notify: Notify, goes_on: str, purge_step: int | None = None,
                 suffix: str = ""):
        super().__init__(folder, notify, goes_on)
        self.file: EventFile | None = None

        def open_file():
            folder.mkdir(parents=True, exist_ok=True)
            self.file = EventFile(folder, suffix, purge_step)
        self._guard(open_file)

    def scalars(self, values: Mapping[str, float | None], step: int) -> None:
        """One event holding every finite value (TensorBoard reads each as its own scalar):
        a row's six values cost one event's header, not six."""
        from tensorboard.compat.proto.summary_pb2 import Summary   # deferred: tensorboard

        kept = [Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items()
                if value is not None and math.isfinite(value)]
        if kept:
            self._guard(lambda: self.file.summary(Summary(value=kept), step))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """(H, W, 3) uint8 as a JPEG (quality JPEG_QUALITY): a third of a PNG's bytes for
        photographs; TensorBoard's image dashboard serves either."""
        from tensorboard.compat.proto.summary_pb2 import Summary   # deferred: tensorboard

        def write():
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG",
                                                              quality=JPEG_QUALITY)
            encoded = Summary.Image(height=image.shape[0], width=image.shape[1], colorspace=3,
                                    encoded_image_string=buffer.getvalue())
            self.file.summary(Summary(value=[Summary.Value(tag=tag, image=encoded)]), step)
            self.file.flush()
        self._guard(write)

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        from torch.utils.tensorboard.summary import histogram   # deferred

        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            self._guard(lambda: self.file.summary(histogram(tag, values, "auto"), step))

    def hparams(self, settings: Mapping[str, Any], metrics: Mapping[str, float | None],
                step: int) -> None:
        """The hparams plugin's summaries in this folder (add_hparams would open a sub-folder):
        one row of TensorBoard's hparams table per run, the metrics as scalars beside it."""
        def write():
            from torch.utils.tensorboard.summary import hparams   # deferred: tensorboard
            numbers = {k: float(v) for k, v in metrics.items()
                       if v is not None and math.isfinite(v)}
            for summary in hparams(hparam_values(settings), numbers):
                self.file.summary(summary, step)
        self._guard(write)
        self.scalars(metrics, step)

    def flush(self) -> None:
        self._guard(lambda: self.file.flush())

    def close(self) -> None:
        self._guard(lambda: self.file.close())
        self.alive = False

    def _abandon(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
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


def _wandb():
    import wandb   # deferred, optional: only a started WandbSink reaches it
    return wandb


class WandbSink(Sink):
    """One W&B run per run folder (its files under RUN/wandb/, its id in RUN/wandb.json);
    WANDB_MODE=offline writes them with no account and no network (`wandb sync RUN/wandb`
    uploads them later; each process leaves its own folder, which wandb syncs into the one run
    in the order they started). A failed start (no login, no network) is one line and the run
    trains on without W&B.

    continued: the folder's record (wandb_record.WandbRecord) to continue that W&B run
    (wandb.init with its id, resume='allow') instead of starting one. first_step: the first
    step logged; a step below it, or below one the continued W&B run holds already
    (first_free_step), is not sent: W&B keeps the value it has (see wandb_record)."""

    what = "Weights & Biases"
    # How often an offline run's record follows its steps at most: an atomic write costs
    # ~0.4 ms of CPU (1-2 ms wall on a loaded disk), as much as run.log itself, too much for
    # every 50 ms step. A process killed outright (SIGKILL, power loss) may leave this many
    # seconds of steps past the record, which its resumed part then logs a second time.
    RECORD_SECONDS = 2.0

    def __init__(self, folder: Path, project: str, entity: str | None, name: str,
                 config: Mapping[str, Any] | None, notify: Notify, goes_on: str, *,
                 continued: WandbRecord | None = None, first_step: int = 0):
        super().__init__(folder / "wandb", notify, goes_on)
        self.folder, self.run, self.record, self.first_step = folder, None, None, first_step
        self._unsaved, self._saved_at = False, time.monotonic()

        def start():
            import wandb   # deferred, optional (check_wandb said it is there)
            (folder / "wandb").mkdir(parents=True, exist_ok=True)
            args: dict[str, Any] = {"project": project, "entity": entity}
            if continued is not None:
                args = init_args(continued)
            self.run = wandb.init(**args, name=name, dir=str(folder), reinit="create_new",
                                  config=dict(config or {}) if continued is None else None,
                                  settings=wandb.Settings(silent=True, console="off"))
            if continued is not None and config:
                self.run.config.update(dict(config), allow_val_change=True)
            self.first_step = first_free_step(self.run, continued, first_step)
            if getattr(self.run, "disabled", False):     # WANDB_MODE=disabled: no W&B run
                return
            # the entity W&B resolved (online without --wandb-entity: the login's default)
            entity_now = args["entity"] or getattr(self.run, "entity", None) or None
            self.record = WandbRecord(self.run.id, args["project"], entity_now,
                                      bool(getattr(self.run, "offline", False)),
                                      continued.step if continued is not None else None)
            self.record.write(folder)          # named before anything is logged to it
        self.verb = "could not start"
        self._guard(start)
        self.verb = "logging stopped"

    def _log(self, data: Callable[[], Mapping[str, Any]], step: int) -> None:
        """run.log(data(), step=step) unless the step is one the W&B run holds already. An
        offline run's record follows the steps logged (nothing else can say later what it
        holds) every RECORD_SECONDS, and at each checkpoint and the end."""
        if not self.alive or step < self.first_step:
            return

        def write():
            self.run.log(dict(data()), step=step)
            if self.record is None:
                return
            self.record = self.record.logged(step)
            self._unsaved = True
            if self.record.offline and time.monotonic() - self._saved_at >= self.RECORD_SECONDS:
                self._save()
        self._guard(write)

    def _save(self) -> None:
        if self._unsaved and self.record is not None:
            self.record.write(self.folder)
            self._unsaved, self._saved_at = False, time.monotonic()

    def scalars(self, values: Mapping[str, float | None], step: int) -> None:
        numbers = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
        if numbers:
            self._log(lambda: numbers, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self._log(lambda: {tag: _wandb().Image(image)}, step)

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            self._log(lambda: {tag: _wandb().Histogram(values)}, step)

    def hparams(self, settings: Mapping[str, Any], metrics: Mapping[str, float | None],
                step: int) -> None:
        def write():
            self.run.config.update(hparam_values(settings), allow_val_change=True)
            self.run.summary.update({k: v for k, v in metrics.items() if v is not None})
        self._guard(write)

    def flush(self) -> None:
        """W&B streams on its own; the record is brought up to date."""
        self._guard(self._save)

    def close(self) -> None:
        def finish():
            self._save()
            self.run.finish()
        self._guard(finish)
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
