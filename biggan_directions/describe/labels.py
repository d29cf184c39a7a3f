"""The label of a direction: the fixed vocabulary, hue names, and the rule that picks the label from the measures.

The rule (README, "What a direction does"): every candidate gets the share of the direction's
change that it explains (measures.explained, energies summed over seeds):
  background        the change outside the object region beyond what the object's own change
                    density would put there: max(0, E_out - E_in * A_out / A_in) / (E_in + E_out)
                    (0 for a change spread evenly over the frame, 1 for one wholly outside);
  each geometric and photometric measure, and shape (what the full model leaves):
                    (1 - background) * explained / E_in.
The label is the candidate with the largest share (`color` is named `color:<hue>`);
label_confidence = that share / the sum of all shares (1: only one candidate explains anything;
about 1/n when n explain as much) times the share of seeds that agree in sign on its measure.
A second label is given when the runner-up's share is at least `second` (0.6) of the winner's.
`inactive` (score's rule: effect < threshold LPIPS; without scores, a mean end-to-end Delta E*ab
below `inactive_delta_e`) overrides all.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .measures import GEOMETRY, PHOTOMETRY, EPS, WalkMeasures

HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")
# the vocabulary, color:<hue> spelled out: what `find` and `render --label` accept
LABELS = ("shift-x", "shift-y", "zoom", "rotation", "brightness", "contrast", "saturation",
          *(f"color:{h}" for h in HUES), "background", "shape", "inactive")
CANDIDATES = (*GEOMETRY, *PHOTOMETRY, "background", "shape")
# the measure whose sign the seeds must agree on, per candidate (ratios compared as logs)
SIGNED = {"shift-x": "shift_x_fraction", "shift-y": "shift_y_fraction", "zoom": "scale_ratio",
          "rotation": "rotation_degrees", "brightness": "brightness_delta",
          "contrast": "contrast_ratio", "saturation": "saturation_ratio", "color": "color_shift"}
RATIOS = ("scale_ratio", "contrast_ratio", "saturation_ratio")
MEASURES = ("shift_x_fraction", "shift_y_fraction", "scale_ratio", "rotation_degrees",
            "motion_explained", "brightness_delta", "contrast_ratio", "saturation_ratio",
            "color_shift", "color_shift_a", "color_shift_b", "color_hue", "background_share",
            "delta_e")


def _hue_angles() -> dict[str, float]:
    """The CIELAB hue angle (degrees, atan2(b*, a*)) of each sRGB primary and secondary colour:
    red (255, 0, 0), yellow, green, cyan, blue, magenta, as OpenCV converts them."""
    rgb = np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]]], np.float32)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0]
    return {h: math.degrees(math.atan2(float(b), float(a))) % 360 for h, (_, a, b) in zip(HUES, lab)}


HUE_ANGLES = _hue_angles()


def hue_name(da: float, db: float) -> str:
    """The name of the hue of an a*b* shift: the nearest of HUE_ANGLES."""
    angle = math.degrees(math.atan2(db, da)) % 360
    return min(HUES, key=lambda h: abs((angle - HUE_ANGLES[h] + 180) % 360 - 180))


def check_label(text: str) -> str:
    """`text` if it is a label of the vocabulary (LABELS), else ValueError listing them."""
    if text not in LABELS:
        raise ValueError(f"unknown label '{text}'; use one of {', '.join(LABELS)}")
    return text


def aggregate(w: WalkMeasures) -> tuple[dict[str, Any], dict[str, float]]:
    """(measures, agreement) of one direction: each measure's median over seeds (energy-weighted
    for background_share), and per signed measure the share of seeds agreeing in sign with it."""
    ps = w.per_seed
    med = {k: float(np.median(v)) for k, v in ps.items()}
    da, db = med["color_shift_a"], med["color_shift_b"]
    measures: dict[str, Any] = {
        **{k: med[k] for k in ("shift_x_fraction", "shift_y_fraction", "scale_ratio",
                               "rotation_degrees", "brightness_delta", "contrast_ratio",
                               "saturation_ratio", "color_shift_a", "color_shift_b")},
        "motion_explained": (1.0 - w.flow_residual / w.flow_energy) if w.flow_energy > EPS else 0.0,
        "color_shift": math.hypot(da, db), "color_hue": hue_name(da, db),
        "background_share": w.outside / max(w.inside + w.outside, EPS),
        "delta_e": w.delta_e}
    agreement = {}
    for name in set(SIGNED.values()):
        if name == "color_shift":
            dots = ps["color_shift_a"] * da + ps["color_shift_b"] * db
            agreement[name] = float((dots > 0).mean()) if (da or db) else 0.0
            continue
        values = np.log(np.maximum(ps[name], EPS)) if name in RATIOS else ps[name]
        centre = math.log(max(med[name], EPS)) if name in RATIOS else med[name]
        agreement[name] = float((np.sign(values) == np.sign(centre)).mean())
    return measures, agreement


def shares_of(w: WalkMeasures) -> dict[str, float]:
    """The share of the change each candidate explains (module docstring), in [0, 1]."""
    total = w.inside + w.outside
    if total <= EPS:
        return {c: 0.0 for c in CANDIDATES}
    excess = w.outside - w.inside * (1 - w.area) / w.area if 0 < w.area < 1 else 0.0
    background = min(1.0, max(0.0, excess) / total)
    inside = max(w.explained.get("total", 0.0), EPS)
    out = {c: (1 - background) * min(1.0, w.explained.get(c, 0.0) / inside)
           for c in (*GEOMETRY, *PHOTOMETRY, "shape")}
    out["background"] = background
    return {c: out[c] for c in CANDIDATES}


def label_of(shares: dict[str, float], measures: dict[str, Any], agreement: dict[str, float],
             *, inactive: bool, second: float = 0.6) -> tuple[str, float, str | None]:
    """(label, label_confidence, second label or None) by the rule of the module docstring."""
    if inactive:
        return "inactive", 1.0, None
    ranked = sorted(CANDIDATES, key=lambda c: (-shares[c], CANDIDATES.index(c)))
    best, runner = ranked[0], ranked[1]
    total = sum(shares.values())
    if total <= EPS:
        return "shape", 0.0, None

    def name(c: str) -> str:
        return f"color:{measures['color_hue']}" if c == "color" else c

    confidence = shares[best] / total * (agreement[SIGNED[best]] if best in SIGNED else 1.0)
    extra = name(runner) if shares[runner] >= second * shares[best] and shares[runner] > 0 else None
    return name(best), float(confidence), extra


def describe_measured(w: WalkMeasures, *, inactive: bool | None = None, second: float = 0.6,
                      inactive_delta_e: float = 1.0) -> dict[str, Any]:
    """One direction's description: label, label_confidence, second_label, inactive, measures,
    agreement (per signed measure) and shares (per candidate). inactive None: the Delta E rule."""
    measures, agreement = aggregate(w)
    shares = shares_of(w)
    if inactive is None:
        inactive = w.delta_e < inactive_delta_e
    label, confidence, extra = label_of(shares, measures, agreement, inactive=bool(inactive),
                                        second=second)
    return {"label": label, "label_confidence": confidence, "second_label": extra,
            "inactive": bool(inactive), "measures": measures, "agreement": agreement,
            "shares": shares}
