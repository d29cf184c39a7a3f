"""Scoring directions by LPIPS along linear walks: effect, smoothness, consistency, inactive, ranking.

For each direction q and seed z the scorer renders ONE linear walk of `steps` frames (odd, default 9)
at t = -1 .. +1 with `walks.walk_latents` (z minus its projection on q, plus t * P * q), so the
centre t = 0 is frame (steps - 1) / 2 and the ends are frames 0 and steps - 1. Each frame is
generated once and its LPIPS features computed once; every distance below is taken between those
features (LPIPS is a distance between per-layer unit-normalised backbone features, weighted by the
package's learned linear layers, so features can be reused across pairs).

  effect         mean over seeds of LPIPS(frame -P, frame +P): how much the direction changes
                 the image end to end. This is the number the ranking uses.
  effect_centre  mean over seeds and both ends of LPIPS(centre, end): the half-walk change,
                 reported beside it (about a quarter of `effect` for an evenly paced walk, since
                 LPIPS behaves like a squared distance, see below).
  smoothness     (steps - 1) * sum of LPIPS between consecutive frames / endpoint LPIPS, both
                 summed over seeds (a ratio of sums, robust to a seed with a tiny endpoint
                 distance). LPIPS is a weighted sum of SQUARED differences of normalised features
                 (its linear weights are >= 0), so the plain ratio of an evenly paced walk is
                 1/(steps-1), not 1; scaled by steps - 1 it is >= 1 always (Cauchy-Schwarz plus the
                 triangle inequality of sqrt(LPIPS)), exactly 1 when the features move along a
                 straight line at even pace, steps - 1 when all the change happens in one step
                 (a jump), and larger still when the walk wanders and comes back.
  consistency    coefficient of variation of the per-seed endpoint LPIPS (sample std / mean over
                 seeds): 0 = the direction does the same amount on every sample. NaN with 1 seed.
  inactive       effect < threshold (default 0.01 LPIPS). Unrelated natural images score several
                 tenths of LPIPS apart, while changes near 0.01 are hard to see at all: a walk from
                 -P to +P that moves the image that little does nothing useful. It is a convention
                 (not a measured just-noticeable difference) and its scale depends on the LPIPS
                 net; tune it with the threshold. The count of inactive directions turns the paper's
                 "shrinkage" (the penalty switches directions off) into a number. Smoothness and
                 consistency of inactive directions are ratios of near-zero numbers (noise) and are
                 left undefined (NaN in memory, null in JSON, empty in CSV).

Ranking ("ranking" in scores.json, read by `render --top K`): ALL direction indices, best first:
active directions by decreasing effect, then the inactive ones (also by decreasing effect), so the
list is always a full permutation; `n_active` says where the active part ends.

The run's class, truncation, path size and model come from layout.resolve_run_settings (what the
config gives, else what the run recorded, else discover's default). The LPIPS metric is
lpips_metric.load_lpips; the files are scores_file's; the printed tables are score_tables'.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm import tqdm

from ..describe.config import DescribeConfig
from ..describe.describe import Describer
from ..foundation.errors import UserError
from ..foundation.settings import at_least, default_of, need, one_of, positive, setting
from ..media.inference import FastCall, record
from ..media.walks import easing, walk_latents
from ..models.generator import latents_for_seeds
from ..runtime.precision import resolve, resolve_compile, tf32_state
from ..runtime.settings import PRECISIONS, compile_setting, precision_setting
from .lpips_metric import DEFAULT_NET, NETS, lpips_distance, lpips_features

DEFAULT_THRESHOLD = 0.01
MAX_SEEDS = 10_000          # seeds per score: each costs K x steps generator images (11.5 M
                            # images for 128 directions at 9 steps)
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)   # the distribution's summary: min, quartiles, max


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ScoreConfig:
    """Settings of one `score` job, checked on construction (SettingError naming the field).

    class_query, truncation, path_size and model left None take the run's recorded values
    (layout.resolve_run_settings)."""

    # one latent per seed via latents_for_seeds (CLI: --seeds LIST or --num-seeds N)
    seeds: tuple[int, ...] = setting(tuple(range(16)), "Seeds to score on (one sample each).",
                                     cli=False)
    steps: int = setting(9, "Frames per linear walk from -P to +P; odd, so the centre t=0 is a frame.")
    path_size: float | None = setting(None, "Walk length P.", shown="the run's")
    class_query: str | None = setting(None, "ImageNet class (name, index or WordNet id); any "
                                      "class, e.g. one of a pooled run's set (default: its first).",
                                      option="--class", metavar="CLASS", shown="the run's")
    truncation: float | None = setting(None, "Latent truncation in (0, 1].", shown="the run's")
    # a name or a model folder (CLI: the shared --model option)
    model: str | None = setting(None, "The BigGAN the directions were learned on.", cli=False)
    net: str = setting(DEFAULT_NET, "LPIPS backbone; its ImageNet weights are downloaded once to "
                               "$TORCH_HOME/hub/checkpoints (or put there by hand when offline).",
                       choices=NETS)
    batch_size: int = setting(32, "Frames per generator / LPIPS batch (lower it if the device "
                                  "runs out of memory).")
    precision: str = precision_setting()   # auto keeps bf16 only when the first batch's LPIPS agrees
    compile: bool | None = compile_setting()   # the generator and LPIPS calls
    threshold: float = setting(DEFAULT_THRESHOLD, "A direction whose effect (endpoint LPIPS) is "
                                                  "below this is inactive.",
                               option="--inactive-threshold")
    compare: tuple[str, ...] | None = setting(
        None, "Also score as many baseline directions and print the distributions side by side: "
              "a comma list of random (orthonormal, seeded by --seed), coords (coordinate axes), "
              "sefa, ganspace (the generator's SeFa / GANSpace directions).",
        metavar="KINDS", parse=lambda text: parse_compare(text))
    seed: int = setting(0, "Seed of the random directions of --compare random (and of "
                           "ganspace's latents).")
    # describing reads the frames scoring makes anyway (no second generation): README, "What a
    # direction does"; BENCHMARKS.md measures what it adds
    describe: bool = setting(True, "Also say what each direction does (label, label confidence "
                                   "and measures: zoom, rotation, shift, colour, ...) from the "
                                   "same frames.")

    def __post_init__(self):
        need(len(self.seeds) <= MAX_SEEDS, "seeds", f"{len(self.seeds)} seeds",
             f"at most {MAX_SEEDS}.")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        need(len(self.seeds) >= 1, "seeds", list(self.seeds), "give at least one seed.")
        walk_pairs(self.steps)
        at_least("batch_size", self.batch_size, 1)
        one_of("precision", self.precision, PRECISIONS)
        need(isinstance(self.threshold, (int, float)) and 0 <= self.threshold < math.inf,
             "threshold", self.threshold, "must be a finite number >= 0.")
        one_of("net", self.net, NETS)
        if isinstance(self.compare, str):
            object.__setattr__(self, "compare", parse_compare(self.compare))
        elif self.compare is not None:
            object.__setattr__(self, "compare", tuple(self.compare))
        need(self.compare is None or (len(self.compare) >= 1 and all(
            k in COMPARE_KINDS for k in self.compare)), "compare",
            ",".join(map(str, self.compare or ())), f"use a comma list of {', '.join(COMPARE_KINDS)}.")
        at_least("seed", self.seed, 0)


# ---------------------------------------------------------------- scoring
@dataclass
class ScoreResult:
    """Scores of K directions over S seeds (CPU float64 tensors; NaN where undefined).

    endpoint:      (K, S) LPIPS(frame -P, frame +P) per seed.
    centre:        (K, S) mean of LPIPS(centre, -P) and LPIPS(centre, +P) per seed.
    path:          (K, S) sum of LPIPS between consecutive frames per seed.
    effect:        (K,) endpoint mean over seeds (the ranking figure).
    effect_centre: (K,) centre mean over seeds.
    smoothness:    (K,) (steps-1) * path.sum(seeds) / endpoint.sum(seeds), >= 1 (1 = evenly
                   paced); NaN for inactive directions.
    consistency:   (K,) std/mean of endpoint over seeds; NaN for inactive ones or one seed.
    inactive:      (K,) bool, effect < threshold.
    ranking:       all K indices, active by decreasing effect, then inactive ones.
    """

    endpoint: torch.Tensor
    centre: torch.Tensor
    path: torch.Tensor
    effect: torch.Tensor
    effect_centre: torch.Tensor
    smoothness: torch.Tensor
    consistency: torch.Tensor
    inactive: torch.Tensor
    ranking: list[int]
    threshold: float
    seeds: list[int]
    steps: int
    path_size: float
    frames: int = 0        # frames generated (= K * S * steps)
    pairs: int = 0         # LPIPS distances taken
    seconds: float = 0.0
    inference: dict[str, Any] | None = None   # precision and compile used (scores.json settings)
    descriptions: list[dict[str, Any]] | None = None   # describe's, one per direction (or None)
    describe_seconds: float = 0.0   # of `seconds`, the time the caller spent describing
    describe_work_seconds: float = 0.0   # describing's measuring, summed over its threads

    @property
    def n_directions(self) -> int:
        return int(self.effect.shape[0])

    @property
    def n_inactive(self) -> int:
        return int(self.inactive.sum())

    @property
    def n_active(self) -> int:
        return self.n_directions - self.n_inactive

    def rows(self) -> list[dict[str, Any]]:
        """One dict per direction, in direction order (rank is 1-based)."""
        rank = {d: r + 1 for r, d in enumerate(self.ranking)}
        described = self.descriptions or [{}] * self.n_directions
        return [{"direction": k, "rank": rank[k], "effect": _num(self.effect[k]),
                 "effect_centre": _num(self.effect_centre[k]),
                 "smoothness": _num(self.smoothness[k]), "consistency": _num(self.consistency[k]),
                 "inactive": bool(self.inactive[k]),
                 "effect_per_seed": [_num(v) for v in self.endpoint[k]],
                 **{key: value for key, value in described[k].items() if key != "direction"}}
                for k in range(self.n_directions)]

    def summary(self) -> dict[str, Any]:
        """Distribution of the scores: counts, and quantiles (QUANTILES, named by quantile_name)
        and mean of effect over all directions and of smoothness / consistency over the active
        ones (None where there is no finite value)."""
        active = ~self.inactive

        def stats(values: torch.Tensor) -> dict[str, float | None]:
            values = values[torch.isfinite(values)]
            if values.numel() == 0:
                return {**{quantile_name(q): None for q in QUANTILES}, "mean": None}
            qs = torch.quantile(values, torch.tensor(QUANTILES, dtype=values.dtype))
            return {**{quantile_name(q): float(v) for q, v in zip(QUANTILES, qs)},
                    "mean": float(values.mean())}

        return {"n": self.n_directions, "active": self.n_active, "inactive": self.n_inactive,
                "effect": stats(self.effect), "smoothness": stats(self.smoothness[active]),
                "consistency": stats(self.consistency[active])}


def quantile_name(q: float) -> str:
    """0.0 -> 'min', 0.25 -> '25%', 1.0 -> 'max' (the keys of ScoreResult.summary)."""
    return {0.0: "min", 1.0: "max"}.get(q, f"{round(q * 100)}%")


def walk_pairs(steps: int) -> tuple[list[tuple[int, int]], dict[str, list[int]]]:
    """The distinct frame pairs one walk of `steps` frames needs, and which pair serves what.

    Returns (pairs, roles): pairs is a list of (i, j) frame indices, i < j; roles maps
    'consecutive' (steps - 1 entries), 'endpoint' (1) and 'centre' (2) to indices into pairs.
    With steps = 3 the centre pairs ARE the consecutive ones and are taken once.
    """
    need(isinstance(steps, int) and steps >= 3 and steps % 2 == 1, "steps", steps,
         "must be odd and >= 3 so the walk's centre t=0 is a frame.")
    c = (steps - 1) // 2
    pairs: list[tuple[int, int]] = []

    def index(i: int, j: int) -> int:
        key = (min(i, j), max(i, j))
        if key not in pairs:
            pairs.append(key)
        return pairs.index(key)

    roles = {"consecutive": [index(i, i + 1) for i in range(steps - 1)],
             "endpoint": [index(0, steps - 1)],
             "centre": [index(c, 0), index(c, steps - 1)]}
    return pairs, roles


def scoring_calls(G: Callable, metric, precision: str, device: torch.device | str,
                  compile: bool = False) -> tuple[FastCall, FastCall]:
    """score's two calls at `precision`: G (latents -> images) and the LPIPS features of images
    (lpips_metric.lpips_features; kept across calls, so never CUDA graphs)."""
    def features(images: torch.Tensor) -> list[torch.Tensor]:
        return lpips_features(metric, images)

    return (FastCall(G, precision, device, compile),
            FastCall(features, precision, device, compile, cuda_graphs=False))


@torch.inference_mode()
def score_directions(G: Callable[[torch.Tensor], torch.Tensor], directions: torch.Tensor,
                     seeds: Sequence[int], *, path_size: float, metric: nn.Module,
                     truncation: float, steps: int = default_of(ScoreConfig, "steps"),
                     batch_size: int = default_of(ScoreConfig, "batch_size"),
                     device: torch.device | str = "cpu", threshold: float = DEFAULT_THRESHOLD,
                     progress: bool = False, desc: str = "score", precision: str = "fp32",
                     compile: bool | None = False,
                     describe: DescribeConfig | None = None) -> ScoreResult:
    """Score each row of `directions` by LPIPS along linear walks (see the module docstring).

    G:          (B, z_dim) latents on `device` -> (B, 3, H, W) images in [-1, 1] (class and
                truncation bound, e.g. BigGANGenerator); called on at most batch_size frames at
                a time, once per frame.
    directions: (K, z_dim); unit rows for meaningful path sizes (a zero row is allowed: inactive).
    seeds:      S >= 1 seeds; latents from latents_for_seeds(seeds, z_dim, truncation).
    path_size:  P > 0; the walk goes from -P to +P.
    metric:     an lpips.LPIPS on `device` (load_lpips).
    precision, compile: of the generator and LPIPS (runtime.precision.resolve: 'auto' checks
                bf16 on the first chunk's mean LPIPS); what ran is in the result's `inference`.
    describe:   a DescribeConfig: also describe each direction from the same frames
                (describe.Describer; the result's `descriptions`, labels inactive by `threshold`).
    Memory: LPIPS features of max(batch_size, steps) frames (whole walks) at a time, plus the
    (steps + 2) / steps as many pair differences of one layer (and, describing, one direction's
    frames as uint8).
    """
    device = torch.device(device)
    seeds = [int(s) for s in seeds]
    need(len(seeds) >= 1, "seeds", seeds, "give at least one seed.")
    positive("path_size", path_size)
    at_least("batch_size", batch_size, 1)
    compile = resolve_compile(compile, device)
    pairs, roles = walk_pairs(steps)
    K, D = directions.shape
    S, T = len(seeds), steps
    z = latents_for_seeds(seeds, D, truncation)                           # (S, D)
    t = easing("linear", T)                                               # (T,) -1 .. +1
    lat = walk_latents(z, directions.float().cpu(), t, path_size)         # (K, T, S, D)
    lat = lat.permute(0, 2, 1, 3).reshape(K * S, T, D)                    # walks: (K*S, T, D)

    a_idx = torch.tensor([i for i, _ in pairs], device=device)
    b_idx = torch.tensor([j for _, j in pairs], device=device)
    dist = torch.empty(K * S, len(pairs), dtype=torch.float64)            # (walks, pairs)
    per_chunk = max(1, batch_size // T)                                   # whole walks per chunk

    describer = Describer(K, S, T, describe) if describe is not None else None

    def distances(gen: FastCall, feat: FastCall, walks: torch.Tensor, bar=None,
                  first: int | None = None) -> torch.Tensor:
        """(w, pairs) float64 LPIPS of w whole walks (w, T, D); walks first.. go to the
        describer too (None: a check that is not kept)."""
        frames = walks.reshape(-1, D)                                     # (w*T, D)
        feats: list[list[torch.Tensor]] = []
        kept: list[torch.Tensor] = []
        for f0 in range(0, frames.shape[0], batch_size):
            images = gen(frames[f0:f0 + batch_size].to(device))           # (b, 3, H, W) in [-1, 1]
            if not isinstance(images, torch.Tensor):
                raise TypeError("score_directions needs a generator that returns one image tensor")
            feats.append(feat(images.float()))
            if describer is not None and first is not None:
                kept.append(images.detach().clone())      # CUDA graphs reuse the output memory
            if bar is not None:
                bar.update(images.shape[0])
        if kept:
            describer.add(first, torch.cat(kept))
        layers = [torch.cat(parts).unflatten(0, (walks.shape[0], T)) for parts in zip(*feats)]
        with tf32_state(device, gen.precision != "fp32"):                # layers: (w, T, C, H, W)
            d = lpips_distance(metric, [f[:, a_idx].flatten(0, 1) for f in layers],
                               [f[:, b_idx].flatten(0, 1) for f in layers])   # (w * pairs,)
        return d.view(walks.shape[0], len(pairs)).double().cpu()

    start = time.perf_counter()
    chosen, check = resolve(precision, device, lambda p: distances(
        *scoring_calls(G, metric, p, device), lat[:per_chunk]).mean().item())   # first chunk
    gen, feat = scoring_calls(G, metric, chosen, device, compile)
    bar = tqdm(total=K * S * T, unit="frame", desc=desc, disable=not progress, leave=False)
    try:
        for w0 in range(0, K * S, per_chunk):
            w1 = min(K * S, w0 + per_chunk)
            dist[w0:w1] = distances(gen, feat, lat[w0:w1], bar, first=w0)
            elapsed = time.perf_counter() - start
            bar.set_postfix_str(f"{w1 * len(pairs) / max(elapsed, 1e-9):.0f} pairs/s")
    except BaseException:
        if describer is not None:
            describer.close()                  # its worker threads stop with the job
        raise
    bar.close()
    inference = record(precision, check, gen, lpips=feat)

    dist = dist.view(K, S, len(pairs))
    if not torch.isfinite(dist).all():
        raise UserError("the generator gave NaN or infinite images; check the model's weights "
                        "(a random model must be run in train mode first to converge spectral norm).")
    endpoint = dist[..., roles["endpoint"][0]]                            # (K, S)
    centre = dist[..., roles["centre"]].mean(-1)                          # (K, S)
    path = dist[..., roles["consecutive"]].sum(-1)                        # (K, S)
    effect = endpoint.mean(1)
    inactive = effect < threshold
    nan = torch.full_like(effect, math.nan)
    pacing = (T - 1) * path.sum(1) / endpoint.sum(1).clamp_min(1e-300)   # 1 = even, T-1 = one jump
    smoothness = torch.where(inactive, nan, pacing)
    if S >= 2:
        cv = endpoint.std(1, correction=1) / effect.clamp_min(1e-300)
        consistency = torch.where(inactive, nan, cv)
    else:
        consistency = nan.clone()
    descriptions = describer.finish(inactive) if describer is not None else None
    return ScoreResult(endpoint=endpoint, centre=centre, path=path, effect=effect,
                       effect_centre=centre.mean(1), smoothness=smoothness,
                       consistency=consistency, inactive=inactive,
                       ranking=rank_directions(effect, inactive), threshold=float(threshold),
                       seeds=seeds, steps=T, path_size=float(path_size), frames=K * S * T,
                       pairs=K * S * len(pairs), seconds=time.perf_counter() - start,
                       inference=inference, descriptions=descriptions,
                       describe_seconds=describer.seconds if describer is not None else 0.0,
                       describe_work_seconds=describer.measure_seconds
                       if describer is not None else 0.0)


def rank_directions(effect: torch.Tensor, inactive: torch.Tensor) -> list[int]:
    """All indices: active ones by decreasing effect, then inactive ones by decreasing effect
    (ties keep index order)."""
    order = sorted(range(effect.shape[0]), key=lambda k: (bool(inactive[k]), -float(effect[k]), k))
    return order


COMPARE_KINDS = ("random", "coords", "sefa", "ganspace")


def parse_compare(text: str) -> tuple[str, ...]:
    """'random,sefa' -> ('random', 'sefa') (order kept, duplicates dropped); SettingError for
    a kind that is not one of COMPARE_KINDS."""
    kinds = tuple(dict.fromkeys(k.strip() for k in str(text).split(",") if k.strip()))
    need(len(kinds) >= 1 and all(k in COMPARE_KINDS for k in kinds), "compare", text,
         f"use a comma list of {', '.join(COMPARE_KINDS)}.")
    return kinds


def _num(v: torch.Tensor | float) -> float | None:
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v
