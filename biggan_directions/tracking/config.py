"""TrackingConfig: where a run's curves and pictures go besides log.csv (TensorBoard, Weights & Biases)."""
from __future__ import annotations

from dataclasses import dataclass

from ..foundation.errors import SettingError
from ..foundation.settings import at_least, need, setting
from ..runs.layout import TB_DIR   # noqa: F401 - RUN/tb/: the run's TensorBoard event files
STRIP_STEPS = 5               # columns of the logged strip (t = -1, -0.5, 0, 0.5, 1)
STRIP_CELL = 64               # pixels a side of a logged strip's cell at most (events stay small)
MAX_LOG_DIRECTIONS = 64       # rows of the logged strip at most


@dataclass(frozen=True)
class TrackingConfig:
    """What a Hessian Penalty run logs while it trains, besides log.csv and curve.png."""

    tensorboard: bool = setting(   # RUN/tb/: scalars per step, a strip per evaluation, hparams
        True, "Write TensorBoard events to RUN/tb/ (scalars per step, the directions as a strip "
              "at each evaluation, hparams at the end).")
    log_directions: int = setting(  # rows of the strip image logged at each evaluation (0: none)
        8, "Directions shown in the strip logged at each evaluation (0: no images).")
    wandb: str | None = setting(    # a W&B project; None: no W&B
        None, "Log the same scalars, images and config to this Weights & Biases project "
              "(pip install 'biggan-directions[wandb]'; WANDB_MODE=offline needs no account). "
              "RUN/wandb.json names the W&B run: --resume continues it, and score and compare "
              "add their results to it.",
        metavar="PROJECT")
    wandb_entity: str | None = setting(None, "Weights & Biases entity (user or team) of --wandb.",
                                       metavar="ENTITY")

    @property
    def enabled(self) -> bool:
        """Does a run log anything (TensorBoard or W&B)?"""
        return self.tensorboard or self.wandb is not None

    def validate(self) -> TrackingConfig:
        """Raise SettingError on a setting outside its range; return self."""
        at_least("log_directions", self.log_directions, 0)
        need(self.log_directions <= MAX_LOG_DIRECTIONS, "log_directions", self.log_directions,
             f"at most {MAX_LOG_DIRECTIONS} rows keep the events small.")
        if self.wandb is not None:
            need(bool(str(self.wandb).strip()), "wandb", self.wandb, "give a project name.")
        if self.wandb_entity is not None and self.wandb is None:
            raise SettingError("wandb_entity", self.wandb_entity,
                               "names the entity of a W&B project; give the project too.")
        return self
