"""DescribeConfig: the settings of describing directions (measures, the label rule's thresholds)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..foundation.settings import at_least, need, positive, setting

MAX_SEEDS = 10_000          # as score: each seed costs K x steps generator images


@dataclass(frozen=True)
class DescribeConfig:
    """Settings of one `describe` job, checked on construction (SettingError naming the field).

    path_size, class_query, truncation and model left None take the run's recorded values
    (layout.resolve_run_settings), as `score` does. The thresholds' sources are in the README
    ("What a direction does")."""

    # one latent per seed via latents_for_seeds (CLI: --seeds LIST or --num-seeds N), as score
    seeds: tuple[int, ...] = setting(tuple(range(16)), "Seeds to describe on (one sample each).",
                                     cli=False)
    steps: int = setting(9, "Frames per linear walk from -P to +P (odd, as score's walks).")
    path_size: float | None = setting(None, "Walk length P.", shown="the run's")
    class_query: str | None = setting(None, "ImageNet class (name, index or WordNet id).",
                                      option="--class", metavar="CLASS", shown="the run's")
    truncation: float | None = setting(None, "Latent truncation in (0, 1].", shown="the run's")
    # a name or a model folder (CLI: the shared --model option)
    model: str | None = setting(None, "The BigGAN the directions were learned on.", cli=False)
    batch_size: int = setting(32, "Frames per generator batch (lower it if the device runs out "
                                  "of memory).")
    # frames larger than this are shrunk (area average) before flow and colour. The flow is most
    # of describing's cost and grows with the pixels: measuring one direction (16 seeds, 9
    # frames) cost 216 ms at 128 px and 53-82 ms at 64 px on the loaded development CPU
    # (BENCHMARKS.md), and a GPU scores a direction in ~70 ms; 64 px still resolves a shift of
    # 1/64 of the width, and the planted scene of tests/test_describe.py is 64 px
    size: int = setting(64, "Describe frames at most this many pixels a side (larger ones are "
                            "shrunk first).")
    # the flow and its fits are most of describing's cost (BENCHMARKS.md): 4 seeds measured
    # every planted factor of tests/test_describe.py within 20%, with all 4 agreeing in sign
    geometry_seeds: int = setting(4, "Measure geometry (optical flow) and the explained change "
                                     "on the first N seeds; photometry uses every seed.")
    # the walk's 9 frames as 4 pairs (0-2-4-6-8) instead of 8 halves the flow and its fits; the
    # motion per pair (at most 1/16 of the width, 7.5 degrees, x1.09 on the planted scene) is
    # well within Farneback's 3-level pyramid (tests/test_describe.py: every planted amount still
    # within 20%)
    flow_stride: int = setting(2, "Measure the flow between every Nth frame of a walk (the "
                                  "first and last always; 1: every consecutive pair).")
    # REFERENCE §9: a flow fitted where |flow| > 10% of its maximum recovered 0.149 of a 0.16
    # shift, a global fit 0.078 (the static background pulls it to zero)
    moving: float = setting(0.10, "A pixel counts as moving when its flow exceeds this share of "
                                  "the pair's largest flow (99th percentile); the similarity is "
                                  "fitted on moving pixels only.")
    # calibrated on the planted generator of tests/test_describe.py (README: the rule)
    second: float = setting(0.6, "A second label is given when its share of the change is at "
                                 "least this fraction of the first label's.")
    # CIE76 colour difference: 2.3 is about one just-noticeable difference (Sharma & Trussell
    # 1997); a walk that moves pixels by less than half that on average does nothing visible
    inactive_delta_e: float = setting(1.0, "Without LPIPS scores, a direction whose mean "
                                           "end-to-end CIELAB difference (Delta E*ab) is below "
                                           "this is inactive.")

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        need(1 <= len(self.seeds) <= MAX_SEEDS, "seeds", f"{len(self.seeds)} seeds",
             f"give from 1 to {MAX_SEEDS} seeds.")
        need(isinstance(self.steps, int) and self.steps >= 3 and self.steps % 2 == 1, "steps",
             self.steps, "must be odd and >= 3 so the walk's centre t=0 is a frame.")
        if self.path_size is not None:
            positive("path_size", self.path_size)
        at_least("batch_size", self.batch_size, 1)
        at_least("size", self.size, 16)
        at_least("geometry_seeds", self.geometry_seeds, 1)
        at_least("flow_stride", self.flow_stride, 1)
        need(isinstance(self.moving, (int, float)) and 0 <= self.moving < 1, "moving",
             self.moving, "must be a share in [0, 1).")
        need(isinstance(self.second, (int, float)) and 0 < self.second <= 1, "second",
             self.second, "must be a fraction in (0, 1].")
        need(isinstance(self.inactive_delta_e, (int, float)) and 0 <= self.inactive_delta_e
             < math.inf, "inactive_delta_e", self.inactive_delta_e, "must be a number >= 0.")
