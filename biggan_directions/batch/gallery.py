"""A self-contained HTML gallery of a batch: one card per class with its videos, strip, scores and links.

index.html lives in the batch folder and opens from disk without a server: every link is
relative to it, the CSS is inline, and there is no script and no external resource. Per class:
the rendered files the manifest lists (MP4/WebM as <video>, GIF/PNG/JPEG as <img>; a finished
class without any shows the newest few media files in its run's videos/ folder, a failed one
never shows files left there by an earlier run), the score table of its best directions (the
scores its job carried, else read with scores_file.read_scores), the hessian run's curve.png (written by discover) and links to
the run folder and its files. A class run with several methods (manifest field `methods`)
shows them side by side instead of one run's media: a table of method, status, the
fixed-evaluation penalty in random-spreads from the random matrices on that run's own draws
(raw penalties of runs on different draws are never put side by side), the verdict against
random matrices and that method's strip/video.
"""
from __future__ import annotations

import html
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from ..foundation.errors import UserError
from ..foundation.fileio import read_json, write_text
from ..models.classes import count_classes
from ..runs import layout
from ..runs.curves import CURVE_FILE
from ..runs.scores_file import read_scores
from .manifest import BATCH_RECORD, MANIFEST, read_manifest

GALLERY = "index.html"
VIDEO_SUFFIXES = (".mp4", ".webm")
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp")
SCAN_LIMIT = 4          # media files shown per class when the manifest lists none
TABLE_ROWS = 8          # score rows per class (the best directions)
RUN_FILES = (layout.RUN_RECORD, layout.STEP_LOG, layout.DIRECTIONS_FILE, layout.SCORES_CSV, layout.SCORES_JSON)

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:16px 24px;
 background:#f4f4f2;color:#222}
h1{font-size:20px;margin:0 0 4px}
.sub{color:#555;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px;overflow:hidden}
.card h2{font-size:16px;margin:0 0 4px}
.idx{color:#777;font-weight:normal}
.wnid{color:#999;font-size:12px;font-weight:normal}
.badge{display:inline-block;font-size:11px;padding:1px 7px;border-radius:9px;color:#fff;
 vertical-align:middle;background:#888}
.badge.finished{background:#2a7d3b}.badge.failed{background:#b3261e}
.badge.interrupted{background:#b26a00}.badge.running{background:#1f5fbf}
.facts{color:#555;margin:0 0 8px;font-size:13px}
.error{background:#fdecea;color:#8a1c13;padding:6px 8px;border-radius:4px;font-size:13px;
 white-space:pre-wrap;word-break:break-word}
figure{margin:0 0 8px}
figure img,figure video{max-width:100%;height:auto;display:block;background:#000}
figcaption{font-size:11px;color:#777;word-break:break-all}
table{border-collapse:collapse;font-size:12px;margin:4px 0 8px;width:100%}
th,td{border-bottom:1px solid #eee;padding:2px 6px;text-align:right}
th{color:#555;font-weight:600}
td.label{text-align:left;font-weight:600}
tr.inactive td{color:#aaa}
table.methods td{vertical-align:top}
table.methods td.media{text-align:left;width:60%}
.links{font-size:12px;margin:0}
.links a{margin-right:10px}
a{color:#1f5fbf}
"""


def write_gallery(batch_folder: str | os.PathLike, entries: Sequence[dict[str, Any]] | None = None,
                  *, title: str | None = None, rows: int = TABLE_ROWS, model: str | None = None,
                  scores: dict[int, dict[str, Any] | None] | None = None,
                  extra_html: str = "") -> Path:
    """Write <batch_folder>/index.html atomically and return its path.

    entries: manifest lines (read_manifest(batch_folder) when None), one card each, in order.
    rows:    score-table rows per class (its best directions by the scores.json ranking).
    model:   the model named in the title (None: batch.json's).
    scores:  {class index: the scores.json content of its card's run}, as its job carried them;
             a class without them has its scores.json read.
    extra_html: a section placed above the cards (batch --pooled: the transfer table).
    """
    folder = Path(batch_folder)
    if entries is None:
        entries = read_manifest(folder)
    text = gallery_html(folder, entries, title=title, rows=rows, model=model, scores=scores,
                        extra_html=extra_html)
    path = folder / GALLERY
    return write_text(path, text)


def gallery_html(batch_folder: Path, entries: Sequence[dict[str, Any]], *, title: str | None = None,
                 rows: int = TABLE_ROWS, model: str | None = None,
                 scores: dict[int, dict[str, Any] | None] | None = None,
                 extra_html: str = "") -> str:
    """The gallery page as a string (see write_gallery and the module docstring)."""
    batch_folder = Path(batch_folder)
    if model is None:
        model = read_json(batch_folder / BATCH_RECORD).get("model") or batch_folder.resolve().parent.name
    title = title or f"biggan-directions batch: {model}"
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.get("status", "?")] = counts.get(e.get("status", "?"), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no classes yet"
    links = " ".join(f'<a href="{_href(name)}">{_esc(name)}</a>'
                     for name in (MANIFEST, BATCH_RECORD) if (batch_folder / name).is_file())
    scores = scores or {}
    cards = "\n".join(_card(batch_folder, e, rows, scores.get(e.get("class_index")))
                      for e in entries)
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_esc(title)}</h1>\n"
            f"<p class=\"sub\">{count_classes(len(entries))}: {_esc(summary)}. Written "
            f"{_esc(time.strftime('%Y-%m-%d %H:%M'))}. {links}</p>\n"
            f"{extra_html}<main class=\"cards\">\n{cards}\n</main>\n</body>\n</html>\n")


def _card(batch_folder: Path, e: dict[str, Any], rows: int, scores: dict[str, Any] | None) -> str:
    status = str(e.get("status", "?"))
    run_rel = str(e.get("run_folder") or "")
    run_folder = batch_folder / run_rel if run_rel else None
    head = (f"<h2><span class=\"idx\">{_esc(e.get('class_index'))}</span> {_esc(e.get('class_name'))} "
            f"<span class=\"wnid\">{_esc(e.get('wnid') or '')}</span> "
            f"<span class=\"badge {_esc(status)}\">{_esc(status)}</span></h2>")
    facts = [steps] if (steps := _steps_fact(e)) else []
    if e.get("final_penalty") is not None:
        facts.append(f"penalty {_num(e['final_penalty'])}")
    methods = e.get("methods") if isinstance(e.get("methods"), dict) else {}
    if e.get("eval_penalty") is not None:
        only = next(iter(methods.values())) if len(methods) == 1 else {}
        verdict = only.get("versus_random") if isinstance(only, dict) else None
        facts.append(f"eval {_num(e['eval_penalty'])}" + (f" ({verdict})" if verdict else ""))
    if e.get("seconds") is not None:
        facts.append(f"{float(e['seconds']):.1f} s")
    parts = [head, f"<p class=\"facts\">{_esc(' · '.join(facts))}</p>" if facts else ""]
    if e.get("error"):
        parts.append(f"<p class=\"error\">{_esc(e['error'])}</p>")
    if len(methods) > 1:
        parts.append(_methods(batch_folder, methods))
    else:
        parts.append(_media(batch_folder, e, run_folder))
    hessian = methods.get("hessian") if len(methods) > 1 else None
    curve_rel = str(hessian.get("run_folder") or "") if isinstance(hessian, dict) else run_rel
    if curve_rel:
        parts.append(_curve(batch_folder, curve_rel))
    if run_folder is not None:
        parts.append(_scores(run_folder, rows, scores))
        parts.append(_links(batch_folder, run_rel, run_folder))
    return f"<section class=\"card\" id=\"c{_esc(e.get('class_index'))}\">\n" + "\n".join(
        p for p in parts if p) + "\n</section>"


def _steps_fact(e: dict[str, Any]) -> str:
    """What the card says of the main run's steps: 'step 150/300' while short of the steps
    asked, '300 steps' at them, '450 steps (more than the 300 asked: kept)' past them (a longer
    run is kept, not cut); nothing when the main run is a closed-form method (no steps)."""
    methods = e.get("methods") if isinstance(e.get("methods"), dict) else {}
    main = "hessian" if "hessian" in methods or not methods else next(iter(methods))
    step, asked = e.get("step"), e.get("steps")
    if step is None or main != "hessian":
        return ""
    if not isinstance(asked, int):
        return f"step {step}"
    if step > asked:
        return f"{step} steps (more than the {asked} asked: kept)"
    return f"{step} steps" if step == asked else f"step {step}/{asked}"


def _media(batch_folder: Path, e: dict[str, Any], run_folder: Path | None) -> str:
    """<figure>s for the listed media that exist (for a finished class without any: the newest
    few in RUN/videos/; other classes show only what their own job listed)."""
    rels = [str(m) for m in (e.get("media") or []) if (batch_folder / str(m)).is_file()]
    scan = e.get("status") == "finished" and run_folder is not None
    if not rels and scan and (run_folder / layout.VIDEOS_DIR).is_dir():
        found = [p for p in (run_folder / layout.VIDEOS_DIR).iterdir()
                 if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES]
        found.sort(key=lambda p: (-p.stat().st_mtime, p.name))
        rels = [Path(os.path.relpath(p, batch_folder)).as_posix() for p in found[:SCAN_LIMIT]]
    figures = []
    for rel in rels:
        name = _esc(Path(rel).name)
        if Path(rel).suffix.lower() in VIDEO_SUFFIXES:
            element = (f"<video src=\"{_href(rel)}\" controls loop muted playsinline "
                       f"preload=\"metadata\"></video>")
        elif Path(rel).suffix.lower() in IMAGE_SUFFIXES:
            element = f"<img src=\"{_href(rel)}\" alt=\"{name}\">"
        else:
            continue
        figures.append(f"<figure>{element}<figcaption>{name}</figcaption></figure>")
    return "\n".join(figures)


def _methods(batch_folder: Path, methods: dict[str, Any]) -> str:
    """One row per method: its run folder link, status, fixed-evaluation penalty, the verdict
    against random matrices, and its media (as _media shows one run's)."""
    body = []
    for name, part in methods.items():
        if not isinstance(part, dict):
            continue
        rel = str(part.get("run_folder") or "")
        folder = batch_folder / rel if rel else None
        label = (f"<a href=\"{_href(rel.rstrip('/') + '/')}\">{_esc(name)}</a>"
                 if folder is not None and folder.is_dir() else _esc(name))
        status = str(part.get("status") or "?")
        error = f"<p class=\"error\">{_esc(part['error'])}</p>" if part.get("error") else ""
        spreads = part.get("random_spreads")
        body.append(f"<tr><td>{label}</td><td><span class=\"badge {_esc(status)}\">{_esc(status)}"
                    f"</span></td><td>{'-' if spreads is None else f'{spreads:+.1f}'}</td>"
                    f"<td>{_esc(part.get('versus_random') or '-')}</td>"
                    f"<td class=\"media\">{error}{_media(batch_folder, part, folder)}</td></tr>")
    return ("<table class=\"methods\"><caption>methods side by side: each run's fixed-evaluation "
            "penalty in random-spreads from the random matrices on its own draws (each method's "
            "run has its own draws, so raw penalties do not compare; below 0 is better than "
            "random; `compare` puts them on one set of draws)</caption>\n<tr><th>method</th>"
            "<th>status</th><th>vs random (random-spreads)</th>"
            "<th>versus random</th><th>strip / video</th></tr>\n" + "\n".join(body) + "\n</table>")


def _curve(batch_folder: Path, run_rel: str) -> str:
    """The run's curve.png (a hessian run's penalties against steps), '' when it has none."""
    rel = f"{run_rel.rstrip('/')}/{CURVE_FILE}"
    if not (batch_folder / rel).is_file():
        return ""
    return (f"<figure><img src=\"{_href(rel)}\" alt=\"training curve\">"
            f"<figcaption>{_esc(CURVE_FILE)}: penalty against steps</figcaption></figure>")


def _scores(run_folder: Path, rows: int, rec: dict[str, Any] | None) -> str:
    """The best `rows` directions of the run's scores (`rec`, else read from its scores.json) as
    a table ('' when not scored)."""
    if rec is None:
        if not (run_folder / layout.SCORES_JSON).is_file():
            return ""
        try:
            rec = read_scores(run_folder)
        except UserError:
            return ""
    ranking, directions = rec["ranking"], rec.get("directions")
    if not isinstance(directions, list):
        return ""
    by_index = {d.get("direction"): d for d in directions if isinstance(d, dict)}
    labelled = any(isinstance(d.get("label"), str) for d in by_index.values())
    body = []
    for k in ranking[:rows]:
        d = by_index.get(k, {})
        cls = " class=\"inactive\"" if d.get("inactive") else ""
        label = (f"<td class=\"label\">{_esc(d.get('label') or '')}</td>"
                 f"<td>{_num(d.get('label_confidence'))}</td>" if labelled else "")
        body.append(f"<tr{cls}><td>{_esc(d.get('rank', ''))}</td><td>{_esc(k)}</td>"
                    f"<td>{_num(d.get('effect'))}</td><td>{_num(d.get('smoothness'))}</td>"
                    f"<td>{_num(d.get('consistency'))}</td>"
                    f"<td>{'yes' if d.get('inactive') else ''}</td>{label}</tr>")
    n, active = rec.get("n_directions"), rec.get("n_active")
    net = (rec.get("settings") or {}).get("net") or "net not recorded"
    caption = f"best {min(rows, len(ranking))} of {n} directions, {active} active (LPIPS {net})"
    label_head = "<th>label</th><th>conf</th>" if labelled else ""
    return (f"<table><caption>{_esc(caption)}</caption>\n<tr><th>rank</th><th>dir</th><th>effect</th>"
            f"<th>smoothness</th><th>consistency</th><th>inactive</th>{label_head}</tr>\n"
            + "\n".join(body) + "\n</table>")


def _links(batch_folder: Path, run_rel: str, run_folder: Path) -> str:
    links = [f"<a href=\"{_href(run_rel.rstrip('/') + '/')}\">run folder</a>"] if run_folder.is_dir() else []
    for name in RUN_FILES:
        if (run_folder / name).is_file():
            links.append(f"<a href=\"{_href(f'{run_rel}/{name}')}\">{_esc(name)}</a>")
    return f"<p class=\"links\">{' '.join(links)}</p>" if links else ""


def _href(rel: str) -> str:
    """A relative path as an attribute-safe URL (each segment percent-encoded)."""
    return html.escape(quote(rel, safe="/"), quote=True)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.4g}"


