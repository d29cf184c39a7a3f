"""Runs of any methods for one class compared on one scale: the fixed-evaluation penalty on identical draws, LPIPS scores, pictures.

Identical draws: ONE set of fixed evaluation draws (evaluation.eval_draws) is built from the
first run's recorded settings (truncation, path size, epsilon, reduction, latents per
direction, Rademacher draws, seed, penalised layers), for K = the smallest number of
directions among the runs, and every run's first K rows are evaluated on exactly those draws,
as are the identity and several random orthonormal matrices (mean +- std). When all runs have
the same number of directions (the default: one per latent coordinate), every row counts; else
the first K rows of each: SeFa and GANSpace order their rows by importance, a Hessian Penalty
matrix's rows are unordered, so its first K are an arbitrary subset (like a random matrix's).
Then the comparison is not like for like: a direction's penalty grows with how much it changes
the image, and the first K of SeFa or GANSpace are their strongest (on the small test model,
in a quick check, SeFa's top 10 read well above random K-row matrices while its full basis
reads at random); the table says so, and full bases (--ndirs = z_dim, the default) compare
only the rotation.
A Hessian Penalty run evaluated with its own settings and K = its ndirs gets exactly the
value its run.json records.

Writes, in the output folder: compare.json, compare.png (each run's top directions as walk
strips, stacked, each under a label) and compare_curves.png (the runs' fixed-evaluation
curves overlaid; SeFa and GANSpace runs, which have no curve, as dashed lines).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..foundation.errors import UserError, os_reason
from ..foundation.fileio import (atomic_path, atomic_paths, check_writable_dir, json_text,
                                 output_folder)
from ..media.frames import strip_image
from ..core.evaluation import (EVAL_MAX_PER_DIRECTION, eval_draws, reference_values,
                               sample_penalties, trimmed_mean, trimmed_mean_se, versus_random)
from ..methods.config import DiscoverConfig
from ..models.classes import slug
from ..models.generator import BigGANGenerator, latents_for_seeds
from ..models.weights import load_biggan
from ..runs.curves import read_log, write_compare_curves
from ..runs.layout import STEP_LOG, Run, RunSettings, open_run, resolve_run_settings
from ..runs.scores_file import read_ranking, run_scores
from ..runtime.precision import tf32_state
from ..tracking.results import add_compare_events, recorded_wandb

COMPARE_JSON = "compare.json"
COMPARE_PNG = "compare.png"
COMPARE_CURVES = "compare_curves.png"
STRIP_STEPS = 7


@dataclass
class CompareReport:
    """What compare_runs measured and wrote."""

    rows: list[dict[str, Any]]           # one per run, in the order given
    reference: dict[str, Any]            # identity, random mean/std/values on the same draws
    settings: dict[str, Any]             # the evaluation's settings (and K)
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)


def run_method(run: Run) -> str:
    """The method that made a run ('hessian' for runs from before methods were recorded)."""
    return str(run.meta.get("method") or run.record.get("method") or "hessian")


def default_out(runs: Sequence[Run], class_index: int, class_name: str) -> Path:
    """<first run's parent folder>/compare-<index>-<class-slug>/."""
    return runs[0].out_folder.parent / f"compare-{class_index}-{slug(class_name)}"


def compare_runs(paths: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
                 model: str | None = None, device: torch.device | str = "cpu",
                 weights_dir: str | os.PathLike | None = None, progress: bool = True,
                 top: int = 6, overwrite: bool = False, net: torch.nn.Module | None = None,
                 log_wandb: bool = True) -> CompareReport:
    """Compare runs (folders or directions files) of one class and model; see the module
    docstring. Everything that can be checked (the runs, one class, one model, the output
    folder) is checked before the model is loaded. `net`: an already loaded BigGAN.
    Each run's row also goes to its TensorBoard events (RUN/tb/) and, with log_wandb, to the
    W&B run it recorded (RUN/wandb.json), continued before the model loads (tracking.results)."""
    if not paths:
        raise UserError("give at least one run to compare.")
    if top < 1:
        raise UserError(f"top {top}: must be at least 1.")
    runs = [open_run(p) for p in paths]
    chosen = [resolve_run_settings(r, model=model) for r in runs]
    first = chosen[0]
    for run, s in zip(runs[1:], chosen[1:]):
        if s.class_index != first.class_index:
            raise UserError(f"{run.name} is class {s.class_index} ({s.class_name}) but {runs[0].name} "
                            f"is class {first.class_index} ({first.class_name}); compare runs of one class.")
        if s.model != first.model:
            raise UserError(f"{run.name} was made with model {s.model} but {runs[0].name} with "
                            f"{first.model}; compare runs of one model.")
    z_dims = {int(r.directions.shape[1]) for r in runs}
    if len(z_dims) > 1:
        raise UserError(f"the runs' directions have different latent sizes {sorted(z_dims)}.")
    folder = Path(out) if out is not None else default_out(runs, first.class_index, first.class_name)
    check_writable_dir(folder)
    if (folder / COMPARE_JSON).exists() and not overwrite:
        raise UserError(f"{folder / COMPARE_JSON}: a comparison exists already; pass --overwrite "
                        f"to replace it.")
    recorded = runs[0].record.get("config") or runs[0].meta.get("settings") or {}
    cfg = DiscoverConfig.from_json(recorded if isinstance(recorded, dict) else {})
    if cfg.eval_per_direction == "auto":            # the size the runs were evaluated at
        sizes = [r.record.get("eval_per_direction") for r in runs]
        sizes = [s for s in sizes if isinstance(s, int) and s >= 1]
        cfg = replace(cfg, eval_per_direction=min(sizes) if sizes else EVAL_MAX_PER_DIRECTION)
    device = torch.device(device)
    with recorded_wandb(runs, "compare", log_wandb) as wandb_runs:   # before the work
        report = _measure_and_write(runs, first, cfg, folder, top, net, weights_dir, device,
                                    progress)
        add_compare_events(runs, report.rows, wandb=wandb_runs)   # each run's RUN/tb/, W&B
    return report


def _measure_and_write(runs: Sequence[Run], first: RunSettings, cfg: DiscoverConfig,
                       folder: Path, top: int, net: torch.nn.Module | None,
                       weights_dir: str | os.PathLike | None, device: torch.device,
                       progress: bool) -> CompareReport:
    """compare_runs' work once everything is checked: the model, the runs on shared draws,
    and compare.png, compare_curves.png and compare.json written together."""
    if net is None:
        net = load_biggan(first.model, device, weights_dir, progress)
    G = BigGANGenerator(net, first.class_index, cfg.truncation, cfg.layers).to(device)
    values, reference, settings = evaluate_runs(G, runs, cfg, device)
    rows = [_row(run, value, reference, se, cfg.eval_per_direction)
            for run, (value, se) in zip(runs, zip(values, settings["standard_errors"]))]
    report = CompareReport(rows, reference, {**settings, "model": first.model,
                                             "class_index": first.class_index,
                                             "class_name": first.class_name}, folder)
    image_G = BigGANGenerator(net, first.class_index, cfg.truncation).to(device)
    report.files = {"sheet": folder / COMPARE_PNG, "curves": folder / COMPARE_CURVES}
    record = {"format": "biggan-directions-compare", "version": 1, "settings": report.settings,
              "reference": reference, "runs": rows,
              "files": {k: str(v) for k, v in report.files.items()}}
    report.files["json"] = folder / COMPARE_JSON
    try:       # the three files together or none, and no folder left by a failure (disk full)
        with output_folder(folder), atomic_paths(list(report.files.values())) as temps:
            write_sheet(temps[0], image_G, runs, cfg, top, device)
            write_curves(temps[1], runs, rows, reference, first.class_name, report.settings)
            temps[2].write_text(json_text(record), encoding="utf-8")
    except OSError as e:
        raise UserError(f"could not write the comparison into {folder} "
                        f"({os_reason(e)}); free space or choose another output "
                        f"folder.") from None
    return report


def evaluate_runs(G, runs: Sequence[Run], cfg, device: torch.device) -> tuple[list[float], dict[str, Any], dict[str, Any]]:
    """Every run's first K rows, the identity and cfg.eval_references random matrices, on one
    set of draws (K = the smallest ndirs). Returns (values, reference, settings); settings'
    `standard_errors` hold each run's standard error on these draws (its verdict's noise)."""
    k = min(int(r.directions.shape[0]) for r in runs)
    z_dim = int(runs[0].directions.shape[1])
    subspaces = {r.subspace for r in runs}
    subspace = subspaces.pop() if len(subspaces) == 1 else None
    if subspace is not None and k > subspace[1] - subspace[0]:
        subspace = None
    draws = eval_draws(k, z_dim, per_direction=cfg.eval_per_direction, k=cfg.eval_k,
                       truncation=cfg.truncation, path_size=cfg.path_size, seed=cfg.seed)
    common = dict(epsilon=cfg.epsilon, reduction=cfg.reduction, device=device,
                  chunk_size=cfg.chunk_size)
    with tf32_state(device, False):
        samples = [sample_penalties(G, r.directions[:k], draws, **common) for r in runs]
        values = [trimmed_mean(v) for v in samples]
        reference = reference_values(G, draws, k, z_dim, subspace=subspace,
                                     matrices=cfg.eval_references, seed=cfg.seed, **common)
    settings = {"directions_evaluated": k, "z_dim": z_dim, "samples": draws.samples, "eval_k": cfg.eval_k,
                "eval_per_direction": cfg.eval_per_direction, "truncation": cfg.truncation,
                "path_size": cfg.path_size, "epsilon": cfg.epsilon, "reduction": cfg.reduction,
                "seed": cfg.seed, "layers": list(cfg.layers), "reference_matrices": cfg.eval_references,
                "reference_subspace": list(subspace) if subspace else None,
                "draws_from": runs[0].name,
                "standard_errors": [trimmed_mean_se(v) for v in samples]}
    return values, reference, settings


def _row(run: Run, value: float, reference: dict[str, Any], noise: float | None = None,
         per_direction: int | None = None) -> dict[str, Any]:
    scores = None
    if run.scored:
        rec = run_scores(run)
        scores = {"summary": rec.get("summary"), "net": (rec.get("settings") or {}).get("net"),
                  "seeds": (rec.get("settings") or {}).get("seeds"),
                  "file": str(run.scores_paths[0])}
    return {"run": run.name, "method": run_method(run), "ndirs": int(run.directions.shape[0]),
            "orthonormal": run.meta.get("orthonormal", True) is not False,
            "eval_penalty": value, "recorded_eval_penalty": run.record.get("eval_penalty"),
            "standard_error": noise,
            "versus_random": versus_random(value, reference, noise=noise,
                                           per_direction=per_direction),
            "vs_random_mean": value / reference["random"] - 1 if reference["random"] else None,
            "scores": scores}


# ---------------------------------------------------------------------- pictures
def write_sheet(path: Path, G, runs: Sequence[Run], cfg, top: int, device: torch.device) -> Path:
    """compare.png: for each run, a label band and the walk strips of its top directions (by
    its LPIPS ranking when scored, else its first rows), one sample, STRIP_STEPS positions."""
    z = latents_for_seeds([cfg.seed], G.z_dim, cfg.truncation).to(device)
    blocks = []
    for run in runs:
        n = min(top, int(run.directions.shape[0]))
        order = read_ranking(run, top=n) if run.scored else list(range(n))
        strip = strip_image(G, run.directions[order].to(device), z, STRIP_STEPS, cfg.path_size,
                            labels=[str(i) for i in order])
        band = Image.new("RGB", (strip.shape[1], 18))
        room = max(8, strip.shape[1] // 6 - len(run_method(run)) - 2)
        name = run.name if len(run.name) <= room else "..." + run.name[-(room - 3):]
        ImageDraw.Draw(band).text((4, 3), f"{run_method(run)}: {name}", fill=(255, 255, 255))
        blocks += [np.asarray(band), strip]
    width = max(b.shape[1] for b in blocks)
    sheet = np.concatenate([np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0))) for b in blocks])
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return path


def evaluated_on(run: Run, settings: dict[str, Any]) -> bool:
    """Were the run's own evaluations (its log.csv curve) made on the comparison's draws and
    settings (`settings`: evaluate_runs'), so that its curve and the common references share
    one scale?"""
    config = run.record.get("config") or {}
    own = {"directions_evaluated": int(run.directions.shape[0]),
           "eval_per_direction": run.record.get("eval_per_direction"),
           **{k: config.get(k) for k in ("eval_k", "truncation", "path_size", "epsilon",
                                         "reduction", "seed")},
           "layers": list(config.get("layers") or [])}
    return all(own[k] == settings.get(k) for k in own)


def write_curves(path: Path, runs: Sequence[Run], rows: Sequence[dict[str, Any]],
                 reference: dict[str, Any], title: str,
                 settings: dict[str, Any] | None = None) -> Path:
    """compare_curves.png, on the scale of the common draws (whose references it draws): a
    Hessian Penalty run's fixed-evaluation curve (its log.csv) where its own evaluations were
    made on those draws (evaluated_on), else, like the other runs, its value on the common
    draws as a line (its own curve is on other draws, and would not be on this scale)."""
    curves = []
    for run, row in zip(runs, rows):
        label = f"{row['method']}: {Path(row['run']).name}"
        evals = read_log(run.folder / STEP_LOG)[2] if run.folder is not None else []
        same = settings is not None and evaluated_on(run, settings)
        if row["method"] == "hessian" and len(evals) > 1 and same:
            curves.append({"label": label, "points": evals})
        else:
            note = " (on the common draws)" if row["method"] == "hessian" else ""
            curves.append({"label": label + note, "points": [(0, row["eval_penalty"])]})
    return write_compare_curves(path, curves, reference, title=f"{title}: fixed-evaluation penalty")


# ---------------------------------------------------------------------- table
def format_report(report: CompareReport) -> str:
    """The printed table: one row per run, the references below."""
    ref, s = report.reference, report.settings
    lines = [f"fixed-evaluation penalty ({ref.get('statistic', 'mean')} of the per-sample "
             f"penalties) on identical draws: {s['directions_evaluated']} directions x "
             f"{s['eval_per_direction']} latents, path size {s['path_size']:g}, seed {s['seed']}",
             f"{'method':<9} {'penalty':>10} {'vs random':>9} {'active':>7} "
             f"{'effect med':>10} {'smooth med':>10} {'consist med':>11} {'LPIPS':<7} "
             f"{'run':<24} verdict"]
    for row in report.rows:
        sc = (row["scores"] or {}).get("summary") or {}
        active = f"{sc['active']}/{sc['n']}" if sc else "-"
        lpips = (row["scores"] or {}).get("net") or "-"
        lines.append(f"{row['method']:<9} {row['eval_penalty']:>10.4g} "
                     f"{_pct(row['vs_random_mean']):>9} {active:>7} "
                     f"{_stat(sc, 'effect'):>10} {_stat(sc, 'smoothness'):>10} "
                     f"{_stat(sc, 'consistency'):>11} {lpips:<7} {row['run']:<24} "
                     f"{row['versus_random']}")
    lines.append(f"{'identity':<9} {ref['identity']:>10.4g}")
    lines.append(f"{'random':<9} {ref['random']:>10.4g} +- {ref['random_std']:.2g} "
                 f"(mean +- std of {len(ref['random_values'])} random orthonormal matrices)")
    nets = sorted({(row["scores"] or {}).get("net") or "?" for row in report.rows if row["scores"]})
    lines.append("LPIPS columns: medians over directions from each run's scores.json, with the "
                 "LPIPS net it was scored with (- when the run is not scored)"
                 + (f"; the runs were scored with different nets ({', '.join(nets)}), whose "
                    f"values do not compare: score them with one --net." if len(nets) > 1
                    else "."))
    ordered = sorted({row["method"] for row in report.rows} & {"sefa", "ganspace"})
    if ordered and s.get("z_dim") and s["directions_evaluated"] < s["z_dim"]:
        lines.append(f"note: {s['directions_evaluated']} of {s['z_dim']} directions: the first "
                     f"rows of {' and '.join(ordered)} are the strongest it found, and a stronger "
                     f"direction has a larger penalty; full bases (--ndirs {s['z_dim']}) compare "
                     f"like with like.")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def _stat(summary: dict[str, Any], metric: str) -> str:
    v = (summary.get(metric) or {}).get("50%") if summary else None
    return "-" if v is None else f"{v:.4f}"
