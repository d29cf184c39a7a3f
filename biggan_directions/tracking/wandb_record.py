"""RUN/wandb.json: the W&B run a run folder logs to, which resume, score and compare continue.

W&B cannot delete a step it holds, and it drops (with a warning) any step below the last one
it holds. So whoever continues a W&B run starts past every step it holds: `first_free_step`,
the larger of the server's own count (`run.starting_step`, online) and the last step this
record says was logged (offline, where there is no server to ask, the record follows the
logged steps every WandbSink.RECORD_SECONDS, at each checkpoint and at the end, an
interruption or a failure included). A resumed discovery redoes the steps after its
checkpoint; those that the interrupted process had logged keep the values it logged (bit for
bit the same on the CPU, within float tolerance on a GPU), each step shown once. Only a
process killed outright while offline can leave up to RECORD_SECONDS of steps past its
record; the resumed part logs those again, into its own offline folder.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..foundation.fileio import read_json, write_json
from ..runs.layout import WANDB_RECORD


@dataclass(frozen=True)
class WandbRecord:
    """What RUN/wandb.json holds."""

    id: str                   # the W&B run id (wandb.init(id=...))
    project: str              # its project
    entity: str | None        # its entity; None: the login's default entity
    offline: bool             # logged with WANDB_MODE=offline: continued offline (see init_args)
    step: int | None = None   # the last step logged to it (None: none yet)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> WandbRecord | None:
        """The folder's record; None when it has none or it is not one this tool wrote (a
        folder without the file is not opened: a batch job reads back nothing it wrote)."""
        path = Path(folder) / WANDB_RECORD
        if not path.is_file():
            return None
        data = read_json(path)
        run_id, project = data.get("id"), data.get("project")
        entity, step = data.get("entity"), data.get("step")
        if not (isinstance(run_id, str) and run_id and isinstance(project, str) and project):
            return None
        return cls(run_id, project, entity if isinstance(entity, str) and entity else None,
                   data.get("offline") is True,
                   step if isinstance(step, int) and not isinstance(step, bool) else None)

    def write(self, folder: str | os.PathLike) -> None:
        """Into RUN/wandb.json, atomically (a WriteError when it cannot be written)."""
        write_json(Path(folder) / WANDB_RECORD, asdict(self))

    def logged(self, step: int) -> WandbRecord:
        """This record after `step` was logged."""
        return self if self.step is not None and self.step >= step else replace(self, step=step)

    def matches(self, project: str, entity: str | None) -> bool:
        """Is this the W&B run a `--wandb project --wandb-entity entity` run logs to? (no
        entity given: any entity, the login's default is what the record holds then)."""
        return self.project == project and (entity is None or entity == self.entity)

    @property
    def name(self) -> str:
        """entity/project/id, as W&B's run path reads (without the entity when unknown)."""
        return "/".join(p for p in (self.entity, self.project, self.id) if p)


def init_args(record: WandbRecord) -> dict[str, Any]:
    """wandb.init's arguments that continue the recorded run: its id with resume='allow' (a
    run that no longer exists on the server is made anew under that id), its project and
    entity; a run logged offline stays offline unless WANDB_MODE says otherwise (never forced
    online: a login's own setting decides that)."""
    args: dict[str, Any] = {"id": record.id, "resume": "allow", "project": record.project,
                            "entity": record.entity}
    if record.offline and not os.environ.get("WANDB_MODE"):
        args["mode"] = "offline"
    return args


def first_free_step(run: Any, record: WandbRecord | None, floor: int = 0) -> int:
    """The first step a continued W&B run can take: past what the server holds
    (run.starting_step: its last step + 1 on a resumed online run, 0 offline), past the last
    step the record saw logged, and at least `floor`."""
    held = record.step + 1 if record is not None and record.step is not None else 0
    return max(int(floor), int(getattr(run, "starting_step", 0) or 0), held)
