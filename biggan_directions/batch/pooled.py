"""`batch --pooled`: one pooled matrix over the batch's classes, then each class scored and rendered with it, and the transfer table.

The pooled run goes where `discover --pooled` puts it (OUT/<model>/pooled-.../, resumed or
skipped like any batch run). Each class then gets a class view of it,
<pooled run>/classes/<index>-<class-slug>/: the pooled matrix as a directions file whose
class is that class (and whose metadata names the pooled run and its set), beside a copy of the
pooled run.json marked with the class. To the class jobs a view is a finished run folder
(JobPlan.pooled_folder points them there), so `--score` and `--render` work per class exactly
as for per-class runs, into the view (scores.json, videos/), and the manifest line and gallery
card of a class describe its view. A view is rewritten (its scores and videos dropped) only
when the pooled matrix changed. Last, the transfer table (scoring.transfer) of the pooled run
beside the per-class hessian runs of the batch's classes that exist under OUT/<model>/ goes to
<batch folder>/transfer/ and onto the gallery.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..foundation.errors import UserError
from ..foundation.fileio import write_json
from ..methods.config import RESUMABLE_CHANGES, DiscoverConfig
from ..models.classes import ImageNetClass, class_meta, slug
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..models.weights.load import weights_identity
from ..runs import files, layout
from ..runs.class_sets import pooled_dir_for
from ..runs.discover import run_discover
from ..scoring.transfer import compare_transfer, format_transfer

VIEWS_DIR = "classes"          # <pooled run>/classes/<index>-<slug>/: one view per class
TRANSFER_DIR = "transfer"      # <batch folder>/transfer/: the batch's transfer table


def check_pooled_batch(classes: Sequence[ImageNetClass], methods: Sequence[str],
                       backend: str) -> None:
    """What a pooled batch refuses before anything is created."""
    if len(classes) < 2:
        raise UserError("--pooled learns one matrix over several classes, and the batch has one; "
                        "give two or more classes, or drop --pooled.")
    if tuple(methods) != ("hessian",):
        raise UserError(f"--pooled learns one matrix with the Hessian Penalty; the methods "
                        f"{', '.join(methods)} find directions per class (drop --pooled or "
                        f"--methods).")
    if backend != "local":
        raise UserError("--pooled runs its one discovery in this process; use --backend local.")


def view_folder(pooled_folder: str | Path, cls: ImageNetClass) -> Path:
    """<pooled run>/classes/<index>-<class-slug>/."""
    return Path(pooled_folder) / VIEWS_DIR / f"{cls.index}-{slug(cls.name)}"


def pooled_stage(plan, classes: Sequence[ImageNetClass], device: torch.device) -> Any:
    """Run (or resume; skip when finished with these settings) the pooled discovery of the
    batch's classes into plan.pooled_folder, then write each class's view. Returns the loaded
    BigGAN (for the transfer table)."""
    folder = Path(plan.pooled_folder)
    config: DiscoverConfig = plan.config_for("hessian")    # as the class jobs check it
    indices = sorted(c.index for c in classes)
    net = load_biggan(plan.model_source, device=device, weights_dir=plan.weights_dir,
                      progress=plan.progress)
    record = files.read_record(folder / layout.RUN_RECORD)
    done = (not plan.overwrite and record.get("status") == "finished"
            and isinstance(record.get("step"), int) and record["step"] >= config.steps
            and config.same_as_recorded(record.get("config") or {}, ignore=RESUMABLE_CHANGES))
    if not done:
        first = min(classes, key=lambda c: c.index)
        meta = {**class_meta(plan.model, first), "classes": indices,
                "class_names": [c.name for c in sorted(classes, key=lambda c: c.index)],
                "model_weights": weights_identity(plan.model_source, plan.weights_dir)}
        G = BigGANGenerator(net, indices, config.truncation, config.layers)
        run_discover(G, config, folder, meta=meta, device=device,
                     resume=not plan.overwrite and files.has_run(folder),
                     overwrite=plan.overwrite, progress=plan.progress,
                     describe=f"pooled {len(indices)} classes")
    pooled = layout.open_run(folder)
    for cls in classes:
        write_view(pooled, cls, view_folder(folder, cls))
    return net


def write_view(pooled: layout.Run, cls: ImageNetClass, folder: Path) -> None:
    """The class view of a pooled run (see the module docstring); kept as it is when it already
    holds the pooled matrix of this step, else rewritten without its scores and videos."""
    meta = {**pooled.meta, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid,
            "pooled_run": str(pooled.folder)}
    current = folder / layout.DIRECTIONS_FILE
    if current.is_file():
        old = layout.open_run(folder)
        if torch.equal(old.directions, pooled.directions) and old.meta.get("step") == meta.get("step"):
            return
    files.prepare_run_folder(folder, resume=False, overwrite=True)   # drop stale scores, videos
    folder.mkdir(parents=True, exist_ok=True)
    files.save_run_directions(current, pooled.directions, meta)
    record = json.loads(json.dumps(pooled.record))
    record["meta"] = {**(record.get("meta") or {}), "class_index": cls.index,
                      "class_name": cls.name, "wnid": cls.wnid}
    record["pooled_run"] = str(pooled.folder)
    write_json(folder / layout.RUN_RECORD, record)


def transfer_section(plan, classes: Sequence[ImageNetClass], batch_folder: Path, net: Any,
                     device: torch.device) -> str:
    """The transfer table of the pooled run and the per-class hessian runs of these classes that
    exist, written to <batch>/transfer/, as an HTML section for the gallery ('' when it fails:
    the batch's own results stand; the reason is shown instead)."""
    runs = [str(plan.pooled_folder)]
    for cls in classes:
        own = layout.run_dir_for(plan.out, plan.model, cls.index, cls.name)
        if (own / layout.DIRECTIONS_FILE).is_file():
            runs.append(str(own))
    out = Path(batch_folder) / TRANSFER_DIR
    try:
        report = compare_transfer(runs, classes=[c.index for c in classes], out=out,
                                  model=plan.model, device=device, progress=plan.progress,
                                  overwrite=True, net=net)
    except UserError as e:
        return (f"<section class=\"transfer\"><h2>Transfer table</h2><p>not written: "
                f"{html.escape(str(e))}</p></section>\n")
    rel = f"{TRANSFER_DIR}/"
    return (f"<section class=\"transfer\"><h2>Transfer table: the pooled matrix (and the "
            f"per-class runs found) on every class</h2>\n"
            f"<p class=\"links\"><a href=\"{rel}transfer.csv\">transfer.csv</a> "
            f"<a href=\"{rel}transfer.json\">transfer.json</a></p>\n"
            f"<img src=\"{rel}transfer.png\" alt=\"transfer heatmap\" style=\"max-width:100%\">\n"
            f"<pre>{html.escape(format_transfer(report))}</pre></section>\n")


def pooled_folder_for(out: str | Path, model: str, classes: Sequence[ImageNetClass]) -> Path:
    """Where a pooled batch's run goes: discover --pooled's folder for the same classes."""
    return pooled_dir_for(out, model, [c.index for c in classes])
