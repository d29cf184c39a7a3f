"""The transfer table: every run's matrix on every class, each class measured against its own random band.

Do class A's directions work on class B? Does one matrix learned over a set of classes (a
pooled run) do as well as per-class ones? `transfer_table` answers on one scale:

- every class c is measured on the same fixed draws (core.evaluation.eval_draws from one seed:
  latents, walks and Rademacher vectors), with the conditional generator G(z, classes) bound
  to c per sample; every matrix sees exactly those draws on that class;
- a value is read against c's OWN random band: `spreads` = (penalty - mean of random
  orthonormal matrices on c) / their standard deviation on c (negative: better than chance),
  because penalties of different classes are on different scales;
- beside each class: its SeFa basis (when the generator's first layer can be read) in the same
  unit, the identity, and the evaluation's spread (the standard error of the trimmed mean of the
  own matrix's per-sample penalties on c);
- the verdict per class: does its own per-class matrix beat the pooled one (and the other
  classes' matrices) by more than that spread?

`compare_transfer` does it for run folders (per-class, pooled, SeFa and GANSpace runs of one
BigGAN) and writes transfer.json, transfer.csv (a row per matrix and class) and transfer.png (a
heatmap of spreads: a row per matrix, a column per class).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..core.evaluation import (EVAL_MAX_PER_DIRECTION, STATISTIC, eval_draws, reference_values,
                               sample_penalties, trimmed_mean, trimmed_mean_se)
from ..foundation.errors import UserError, os_reason
from ..foundation.fileio import atomic_paths, check_writable_dir, json_text, output_folder
from ..methods.config import DiscoverConfig
from ..methods.sefa import sefa_available, sefa_directions
from ..models.classes import resolve_class
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..runs.class_sets import pooled_name
from ..runs.layout import Run, open_run, resolve_run_settings
from ..runtime.precision import tf32_state
from .compare import run_method

TRANSFER_JSON = "transfer.json"
TRANSFER_CSV = "transfer.csv"
TRANSFER_PNG = "transfer.png"
CSV_FIELDS = ["matrix", "method", "trained_on", "class_index", "class_name", "penalty",
              "spreads", "random_mean", "random_std", "sefa_penalty", "sefa_spreads",
              "identity_penalty", "eval_se", "own"]


@dataclass(frozen=True)
class Matrix:
    """One matrix of the table: its label, method, the classes it was learned on (one for a
    per-class run, the set for a pooled one, empty when unknown) and its rows."""

    name: str
    method: str
    trained_on: tuple[int, ...]
    q: torch.Tensor

    @property
    def pooled(self) -> bool:
        return len(self.trained_on) > 1


@dataclass
class TransferReport:
    """What transfer_table measured: per class its references, per matrix and class a cell."""

    matrices: list[dict[str, Any]]             # name, method, trained_on
    classes: list[dict[str, Any]]              # index, name, random, random_std, sefa, ...
    cells: list[list[dict[str, Any]]]          # [matrix][class]: penalty, spreads
    verdicts: list[dict[str, Any]]             # per class: own vs pooled, own vs others
    settings: dict[str, Any]
    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "TransferReport":
        """A report read back from its transfer.json (to redraw or reprint it)."""
        return cls(record["matrices"], record["classes"], record["cells"], record["verdicts"],
                   record["settings"])

    def record(self) -> dict[str, Any]:
        return {"format": "biggan-directions-transfer", "version": 1, "settings": self.settings,
                "matrices": self.matrices, "classes": self.classes, "cells": self.cells,
                "verdicts": self.verdicts, "files": {k: str(v) for k, v in self.files.items()}}


def spreads(value: float, mean: float, std: float) -> float | None:
    """(value - mean) / std: how many random standard deviations from chance (None: no spread)."""
    return (value - mean) / std if std and std > 0 else None


def transfer_table(G: Callable, matrices: Sequence[Matrix], classes: Sequence[int],
                   config: DiscoverConfig, *, device: torch.device | str = "cpu",
                   names: dict[int, str] | None = None,
                   on_class: Callable[[int], None] | None = None) -> TransferReport:
    """Every matrix on every class (see the module docstring). G: a conditional generator
    G(z, classes) with z_dim; matrices: their first K rows count (K the smallest ndirs);
    config: the evaluation settings (eval_per_direction a number; truncation, path_size,
    epsilon, reduction, eval_k, eval_references, seed, chunk_size, sefa_layers)."""
    if not matrices:
        raise UserError("give at least one run for the transfer table.")
    if not classes:
        raise UserError("give at least one class for the transfer table.")
    device = torch.device(device)
    k = min(int(m.q.shape[0]) for m in matrices)
    z_dim = int(G.z_dim)
    per = int(config.eval_per_direction)
    common = dict(epsilon=config.epsilon, reduction=config.reduction, device=device,
                  chunk_size=config.chunk_size)
    rows = [m.q[:k] for m in matrices]
    sefa = (sefa_directions(G, k, config.sefa_layers)[0]
            if k == z_dim and sefa_available(G, k, config.sefa_layers) else None)
    class_info, cells = [], [[] for _ in matrices]
    for c in classes:
        draws = eval_draws(k, z_dim, per_direction=per, k=config.eval_k,
                           truncation=config.truncation, path_size=config.path_size,
                           seed=config.seed, classes=(int(c),))
        with tf32_state(device, False):
            ref = reference_values(G, draws, k, z_dim, matrices=config.eval_references,
                                   seed=config.seed, **common)
            values = [sample_penalties(G, q, draws, **common) for q in rows]
            sefa_value = (trimmed_mean(sample_penalties(G, sefa, draws, **common))
                          if sefa is not None else None)
        mean, std = ref["random"], ref["random_std"]
        own = [i for i, m in enumerate(matrices) if m.trained_on == (int(c),)
               and m.method == "hessian"]
        se_of = values[own[0]] if own else None
        class_info.append({
            "index": int(c), "name": (names or {}).get(int(c), str(c)),
            "random": mean, "random_std": std, "random_values": ref["random_values"],
            "identity": ref["identity"], "identity_spreads": spreads(ref["identity"], mean, std),
            "sefa": sefa_value, "sefa_spreads": None if sefa_value is None
            else spreads(sefa_value, mean, std),
            "eval_se": trimmed_mean_se(se_of) if se_of is not None else None,
            "own_matrix": matrices[own[0]].name if own else None})
        for i, v in enumerate(values):
            value = trimmed_mean(v)
            cells[i].append({"penalty": value, "spreads": spreads(value, mean, std),
                             "se": trimmed_mean_se(v)})
        if on_class is not None:
            on_class(int(c))
    verdicts = [_verdict(matrices, cells, j, info) for j, info in enumerate(class_info)]
    settings = {"directions_evaluated": k, "z_dim": z_dim, "eval_per_direction": per,
                "samples_per_class": k * per, "eval_k": config.eval_k,
                "truncation": config.truncation, "path_size": config.path_size,
                "epsilon": config.epsilon, "reduction": config.reduction, "seed": config.seed,
                "reference_matrices": config.eval_references, "statistic": STATISTIC}
    return TransferReport([{"name": m.name, "method": m.method, "trained_on": list(m.trained_on)}
                           for m in matrices], class_info, cells, verdicts, settings)


def _verdict(matrices: Sequence[Matrix], cells, j: int, info: dict[str, Any]) -> dict[str, Any]:
    """Class j: does its own per-class Hessian matrix beat the pooled one(s) and the other
    classes' per-class matrices by more than the evaluation's spread (eval_se)?"""
    c = info["index"]
    own = next((i for i, m in enumerate(matrices) if m.trained_on == (c,) and m.method == "hessian"),
               None)
    out: dict[str, Any] = {"class_index": c, "own": None if own is None else matrices[own].name,
                           "eval_se": info["eval_se"]}
    if own is None:
        return out
    own_value, margin = cells[own][j]["penalty"], info["eval_se"] or 0.0

    def versus(indices: list[int]) -> dict[str, Any] | None:
        if not indices:
            return None
        best = min(indices, key=lambda i: cells[i][j]["penalty"])
        gap = cells[best][j]["penalty"] - own_value       # > 0: own is lower (better)
        return {"best": matrices[best].name, "gap": gap, "gap_in_se": gap / margin if margin else None,
                "beats": gap > margin}

    out["versus_pooled"] = versus([i for i, m in enumerate(matrices) if m.pooled])
    out["versus_others"] = versus([i for i, m in enumerate(matrices)
                                   if len(m.trained_on) == 1 and m.trained_on != (c,)
                                   and m.method == "hessian"])
    return out


# ---------------------------------------------------------------------- run folders
def run_classes(run: Run) -> tuple[int, ...]:
    """The classes a run's matrix was learned on: a pooled run's set, else its class."""
    found = run.meta.get("classes")
    if isinstance(found, list) and found:
        return tuple(int(c) for c in found)
    index = run.meta.get("class_index")
    return (int(index),) if isinstance(index, int) else ()


def run_label(run: Run) -> str:
    """A short name for a run in the table: its folder's name (with the method for SeFa and
    GANSpace, whose folders share the class's name)."""
    base = (run.folder or run.directions_path).name
    method = run_method(run)
    return base if method == "hessian" else f"{method}/{base}"


def compare_transfer(paths: Sequence[str | os.PathLike], *, classes: Sequence[str | int] | None = None,
                     out: str | os.PathLike | None = None, model: str | None = None,
                     device: torch.device | str = "cpu",
                     weights_dir: str | os.PathLike | None = None, progress: bool = True,
                     overwrite: bool = False, net: torch.nn.Module | None = None) -> TransferReport:
    """`compare --transfer`: the transfer table of runs (folders or directions files) of one
    BigGAN, over `classes` (default: every class a run was learned on), written to `out`
    (default: <first run's parent>/transfer-<i>-<j>-.../). Everything checkable (runs, one
    model and latent, the classes, the output folder) is checked before the model loads."""
    if not paths:
        raise UserError("give at least one run for the transfer table.")
    runs = [open_run(p) for p in paths]
    models = {resolve_run_settings(r, model=model).model for r in runs}
    if len(models) > 1:
        raise UserError(f"the runs were made with different models ({', '.join(sorted(models))}); "
                        f"a transfer table compares runs of one model.")
    z_dims = {int(r.directions.shape[1]) for r in runs}
    if len(z_dims) > 1:
        raise UserError(f"the runs' directions have different latent sizes {sorted(z_dims)}.")
    labels = [run_label(r) for r in runs]
    if len(set(labels)) < len(labels):          # two runs with one folder name: their paths
        labels = [r.name for r in runs]
    if classes:
        chosen = [resolve_class(c) for c in classes]
    else:
        found = sorted({c for r in runs for c in run_classes(r)})
        if not found:
            raise UserError("no run records its class; give the classes with --classes.")
        chosen = [resolve_class(c) for c in found]
    indices = [c.index for c in chosen]
    if len(set(indices)) < len(indices):
        raise UserError("--classes: a class is given twice; give each class once.")
    folder = (Path(out) if out is not None else
              runs[0].out_folder.parent / ("transfer-" + pooled_name(indices)[len("pooled-"):]))
    check_writable_dir(folder)
    if (folder / TRANSFER_JSON).exists() and not overwrite:
        raise UserError(f"{folder / TRANSFER_JSON}: a transfer table exists already; pass "
                        f"--overwrite to replace it.")
    cfg = evaluation_config(runs)
    model_name = models.pop()
    device = torch.device(device)
    if net is None:
        net = load_biggan(model_name, device, weights_dir, progress)
    G = BigGANGenerator(net, indices, cfg.truncation, cfg.layers).to(device)
    matrices = [Matrix(label, run_method(r), run_classes(r), r.directions)
                for label, r in zip(labels, runs)]
    report = transfer_table(G, matrices, indices, cfg, device=device,
                            names={c.index: c.name for c in chosen})
    report.settings.update(model=model_name, runs=[r.name for r in runs])
    write_transfer(report, folder)
    return report


def evaluation_config(runs: Sequence[Run]) -> DiscoverConfig:
    """The evaluation settings of a transfer table: the first run's recorded ones, at the
    smallest size the runs were evaluated at (as compare takes them)."""
    recorded = runs[0].record.get("config") or runs[0].meta.get("settings") or {}
    cfg = DiscoverConfig.from_json(recorded if isinstance(recorded, dict) else {})
    if cfg.eval_per_direction == "auto":
        sizes = [r.record.get("eval_per_direction") for r in runs]
        sizes = [s for s in sizes if isinstance(s, int) and s >= 1]
        cfg = replace(cfg, eval_per_direction=min(sizes) if sizes else EVAL_MAX_PER_DIRECTION)
    return cfg


def write_transfer(report: TransferReport, folder: Path) -> TransferReport:
    """transfer.json, transfer.csv and transfer.png into `folder`: all three or none."""
    report.folder = folder
    report.files = {"json": folder / TRANSFER_JSON, "csv": folder / TRANSFER_CSV,
                    "heatmap": folder / TRANSFER_PNG}
    try:
        with output_folder(folder), atomic_paths(list(report.files.values())) as temps:
            temps[0].write_text(json_text(report.record()), encoding="utf-8")
            temps[1].write_text(transfer_csv(report), encoding="utf-8", newline="")
            write_heatmap(temps[2], report)
    except OSError as e:
        raise UserError(f"could not write the transfer table into {folder} ({os_reason(e)}); "
                        f"free space or choose another output folder.") from None
    return report


def transfer_csv(report: TransferReport) -> str:
    """A row per matrix and class: its penalty and spreads beside the class's random band, SeFa
    and identity."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for m, row in zip(report.matrices, report.cells):
        for info, cell in zip(report.classes, row):
            writer.writerow({
                "matrix": m["name"], "method": m["method"],
                "trained_on": " ".join(str(c) for c in m["trained_on"]),
                "class_index": info["index"], "class_name": info["name"],
                "penalty": _g(cell["penalty"]), "spreads": _g(cell["spreads"]),
                "random_mean": _g(info["random"]), "random_std": _g(info["random_std"]),
                "sefa_penalty": _g(info["sefa"]), "sefa_spreads": _g(info["sefa_spreads"]),
                "identity_penalty": _g(info["identity"]), "eval_se": _g(info["eval_se"]),
                "own": int(info["own_matrix"] == m["name"])})
    return buf.getvalue()


def _g(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def write_heatmap(path: Path, report: TransferReport) -> Path:
    """transfer.png: spreads (random standard deviations from chance, lower is better) of a row
    per matrix on a column per class, with SeFa's as the last row, each cell labelled."""
    import matplotlib                     # deferred: plotting is only needed here
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [m["name"] for m in report.matrices]
    grid = [[c["spreads"] for c in row] for row in report.cells]
    if any(info["sefa_spreads"] is not None for info in report.classes):
        names.append("SeFa (per class)")
        grid.append([info["sefa_spreads"] for info in report.classes])
    data = np.array([[np.nan if v is None else v for v in row] for row in grid], dtype=float)
    cols = [f"{c['index']} {c['name']}"[:18] for c in report.classes]
    fig, ax = plt.subplots(figsize=(max(6.0, 2.6 + 1.1 * len(cols)), 1.6 + 0.45 * len(names)))
    finite = data[np.isfinite(data)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    image = ax.imshow(data, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")  # blue: good
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), [n[:28] for n in names], fontsize=8)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="random-spreads (< 0: better than chance)")
    ax.set_title("each matrix on each class, against the class's random band", fontsize=9)
    fig.tight_layout()
    with open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def format_transfer(report: TransferReport) -> str:
    """The printed table (spreads) and, per class, the verdict of its own matrix."""
    s = report.settings
    width = max(12, *(len(m["name"]) for m in report.matrices))
    heads = "".join(f"{str(c['index']):>9}" for c in report.classes)
    lines = [f"transfer: each matrix on each class in random-spreads (penalty minus the class's "
             f"random mean, over its std; lower is better), {s['directions_evaluated']} "
             f"directions x {s['eval_per_direction']} latents per class, seed {s['seed']}",
             f"{'matrix':<{width}} {heads}"]
    for m, row in zip(report.matrices, report.cells):
        lines.append(f"{m['name']:<{width}} " + "".join(f"{_num(c['spreads']):>9}" for c in row))
    lines.append(f"{'SeFa':<{width}} " + "".join(f"{_num(c['sefa_spreads']):>9}"
                                                for c in report.classes))
    lines.append(f"{'identity':<{width}} " + "".join(f"{_num(c['identity_spreads']):>9}"
                                                    for c in report.classes))
    for v, info in zip(report.verdicts, report.classes):
        head = f"class {info['index']} ({info['name']})"
        if v.get("own") is None:
            lines.append(f"{head}: no per-class hessian run of its own in the table.")
            continue
        parts = []
        for key, what in (("versus_pooled", "the pooled matrix"),
                          ("versus_others", "the other classes' matrices")):
            d = v.get(key)
            if d is None:
                continue
            verdict = "beats" if d["beats"] else "does not beat"
            parts.append(f"{verdict} {what} ({d['best']}) by more than the evaluation's spread "
                         f"(gap {d['gap']:.3g}, spread {v['eval_se']:.3g})")
        lines.append(f"{head}: its own matrix " + ("; ".join(parts) if parts else
                                                   "has nothing to be compared with") + ".")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"
