"""The events of a discovery run: the sink run_discover calls (`on_event`), fanned out to TensorBoard and W&B.

run_discover (runs/discover.py) knows nothing of loggers: it calls on_event(kind, **fields) at
points of its loop, and TrainingTracker turns those calls into events:

  start       folder, step (0, or the checkpoint's on resume), config, meta, G, device: opens
              RUN/tb/ (purging the steps a resume redoes) and the W&B run: the one RUN/wandb.json
              names when the folder has one in the same project (resumed, logging only steps
              it does not hold: wandb_record), else a new one, named there.
  row         each log.csv row as it is written: step, penalty, eval_penalty, best, lr,
              images_per_second, eval_share, and `directions` (a callable giving the current
              (ndirs, z_dim) matrix): scalars under SCALARS' names; at an evaluation, the strip
              of the first `log_directions` directions.
  checkpoint  step: events flushed with each checkpoint, so a crash loses none before it.
  end         record (run.json): hparams with the final and test-set evaluations and the verdict.
  method      folder, config, meta, record: a SeFa or GANSpace run (no training): its fixed
              evaluation at step 0 and its hparams row, so a batch's methods sit in one table.
  close       the writers closed (also after an interruption or a failure).

The strip is media.frames.strip_image, the code behind `render --strip`, at STRIP_STEPS columns
and cells of at most STRIP_CELL pixels.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from PIL import Image

from ..media.frames import strip_image
from ..models.generator import latents_for_seeds
from .config import STRIP_CELL, STRIP_STEPS, TB_DIR, TrackingConfig
from .sinks import Sink, TensorBoardSink, WandbSink, check_wandb
from .wandb_record import WandbRecord

# log.csv's columns and the run's speed as scalars, one name each, the same in every run so
# that runs line up in one dashboard (TensorBoard groups tags by the part before the slash).
SCALARS = {"penalty": "penalty/train", "eval_penalty": "penalty/eval", "best": "penalty/best",
           "lr": "train/lr", "images_per_second": "speed/images_per_second",
           "eval_share": "speed/eval_share"}
STRIP_TAG = "directions/strip"
# the hparams table's metrics (run.json values), beside the run's settings
METRICS = {"hparam/eval_penalty": "eval_penalty", "hparam/best_eval_penalty": "best_eval_penalty",
           "hparam/final_penalty": "final_penalty"}
GOES_ON = "training goes on; log.csv, curve.png and the checkpoints are kept as usual."


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class TrainingTracker:
    """The on_event sink of discovery runs (see the module docstring); one object serves the
    runs of several classes in turn (each opens its own RUN/tb/ at `start`). Refuses a W&B
    project when wandb is not installed (SettingError), before any run starts."""

    def __init__(self, config: TrackingConfig | None = None,
                 notify: Callable[[str], None] | None = None):
        self.config = (config or TrackingConfig()).validate()
        check_wandb(self.config.wandb)
        self.notify = notify or to_stderr
        self.sinks: list[Sink] = []
        self._strip: dict[str, Any] | None = None

    def __call__(self, kind: str, **fields: Any) -> None:
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:                      # kinds this tracker does not log: ignored
            handler(**fields)

    # ------------------------------------------------------------------ events
    def _on_start(self, folder: Path, step: int, config, meta: Mapping[str, Any], G,
                  device: torch.device | str = "cpu") -> None:
        self._on_close()
        self._open(Path(folder), step, config, meta)
        self._strip = None
        if self.config.log_directions > 0:
            z = latents_for_seeds([config.seed], int(G.z_dim), config.truncation)
            self._strip = {"G": G, "z": z.to(device), "path_size": config.path_size}

    def _on_row(self, step: int, directions: Callable[[], torch.Tensor] | None = None,
                **values: float | None) -> None:
        scalars = {SCALARS[k]: v for k, v in values.items() if k in SCALARS}
        for sink in self.sinks:
            sink.scalars(scalars, step)
        if values.get("eval_penalty") is not None and self._strip is not None \
                and directions is not None and self.sinks:
            image = self._strip_image(directions())
            if image is not None:
                for sink in self.sinks:
                    sink.image(STRIP_TAG, image, step)

    def _on_checkpoint(self, step: int) -> None:
        for sink in self.sinks:
            sink.flush()

    def _on_end(self, record: Mapping[str, Any]) -> None:
        settings, metrics = hparams_of(record)
        for sink in self.sinks:
            sink.hparams(settings, metrics, int(record.get("step") or 0))
            sink.flush()

    def _on_method(self, folder: Path, config, meta: Mapping[str, Any],
                   record: Mapping[str, Any]) -> None:
        self._on_close()
        self._open(Path(folder), 0, config, meta)
        self._on_row(0, eval_penalty=record.get("eval_penalty"))
        self._on_end(record)
        self._on_close()

    def _on_close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []
        self._strip = None

    # ------------------------------------------------------------------ helpers
    def _open(self, folder: Path, step: int, config, meta: Mapping[str, Any]) -> None:
        if self.config.tensorboard:
            self.sinks.append(TensorBoardSink(folder / TB_DIR, self.notify, GOES_ON,
                                              purge_step=step + 1 if step > 0 else None))
        recorded = WandbRecord.read(folder)     # the W&B run an earlier part of this run began
        project, entity = self.config.wandb, self.config.wandb_entity
        first = step + 1 if step > 0 else 0     # the first step this part logs
        if project is not None:
            continued = recorded if recorded is not None and recorded.matches(project, entity) \
                else None
            if recorded is not None and continued is None:
                self.notify(f"{folder}: logged to the W&B run {recorded.name} so far; --wandb "
                            f"{_named(project, entity)} starts a new W&B run for its steps "
                            f"from {first} (RUN/wandb.json then names it).")
            settings = {**dict(meta), **config.to_json(), "run_folder": str(folder)}
            self.sinks.append(WandbSink(folder, project, entity, folder.name, settings,
                                        self.notify, GOES_ON, continued=continued,
                                        first_step=first))
        elif recorded is not None and step > 0:
            self.notify(f"{folder}: its W&B run {recorded.name} is not continued (add --wandb "
                        f"{_named(recorded.project, recorded.entity)} to continue it).")
        self.sinks = [s for s in self.sinks if s.alive]

    def _strip_image(self, q: torch.Tensor) -> np.ndarray | None:
        """(H, W, 3) uint8: the first log_directions rows of `q` walked from -P to +P."""
        s = self._strip
        rows = q[:self.config.log_directions].to(s["z"].device)
        try:
            image = strip_image(s["G"], rows, s["z"], STRIP_STEPS, s["path_size"],
                                labels=[str(i) for i in range(rows.shape[0])])
        except (RuntimeError, ValueError) as e:       # out of memory, say: no picture, no harm
            self.notify(f"directions strip not logged ({e}); {GOES_ON}")
            self._strip = None
            return None
        return shrink(image, s["G"].resolution)


def _named(project: str, entity: str | None) -> str:
    """How the options name a W&B project: `P`, or `P --wandb-entity E`."""
    return project if entity is None else f"{project} --wandb-entity {entity}"


def shrink(image: np.ndarray, resolution: int, cell: int = STRIP_CELL) -> np.ndarray:
    """A strip of cells of `resolution` pixels with cells of at most `cell` pixels (the label
    column scaled alike), by area averaging; unchanged when the cells are small already."""
    if resolution <= cell:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * cell / resolution)), max(1, round(h * cell / resolution)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BOX))


def hparams_of(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """(settings, metrics) of the hparams table from a run.json: the method and the settings
    that decide its result, the model and class; the final evaluations, the test set's value
    and its verdict against random."""
    meta = record.get("meta") or {}
    settings: dict[str, Any] = {"method": record.get("method"), "model": meta.get("model"),
                                "class_index": meta.get("class_index"),
                                **(record.get("method_settings") or {})}
    for key in ("lr", "k", "init", "parametrization", "schedule", "precision"):
        if key in record and key not in settings:
            settings[key] = record[key]
    test = record.get("test_eval") or {}
    settings["verdict"] = record.get("versus_random") or "none"
    settings["test_verdict"] = test.get("versus_random") or "none"
    metrics = {name: record.get(key) for name, key in METRICS.items()}
    metrics["hparam/test_penalty"] = test.get("value")
    random = (record.get("reference_eval") or {}).get("random")
    value = record.get("eval_penalty")
    metrics["hparam/eval_vs_random"] = (value / random - 1) if value is not None and random else None
    return settings, {k: (float(v) if isinstance(v, (int, float)) else None)
                      for k, v in metrics.items()}
