"""What one direction's walks do, measured: geometry from optical flow, photometry in CIELAB, where.

Input: the walks of one direction over S seeds, (S, T, H, W, 3) uint8 RGB, frame 0 at -P and
frame T-1 at +P (the linear walk `score` generates). Per seed:

Geometry (geometry.py). Dense optical flow (OpenCV's Farneback) between consecutive frames of
every `flow_stride`-th frame (2: frames 0, 2, 4, 6, 8 of a 9-frame walk), each pair fitted to a
similarity about the image centre on its moving pixels, then refined on the intensities.
The pairs' transforms are composed over the walk, -P to +P:
  shift_x_fraction, shift_y_fraction  t / width, t / height (+ right, + down)
  scale_ratio                         s (> 1: the image zooms in towards +P)
  rotation_degrees                    + counter-clockwise on screen
  motion_explained                    1 - residual / flow energy of the fits, moving pixels
Photometry, CIELAB (OpenCV's sRGB D65 conversion), the two ends, over the object region:
  brightness_delta   mean L*(+P) - mean L*(-P)
  contrast_ratio     std L*(+P) / std L*(-P)
  saturation_ratio   mean chroma(+P) / mean chroma(-P), chroma = sqrt(a*^2 + b*^2)
  color_shift_a/_b   mean a*, b* change; color_shift its length; color_hue its hue's name
Where:
  background_share   share of the end-to-end change energy (sum of squared Lab differences)
                     outside the object region.
  delta_e            mean end-to-end CIE76 difference (Delta E*ab) over the object, or over
                     the whole frame when that is larger.
The object (no segmentation model) comes in two steps. The region (`object_mask`): where the
direction's centre frames (t = 0) differ most across seeds: the per-pixel standard deviation of
the Lab colour over seeds, smoothed (sigma 1/32 of the side), split by Otsu's threshold, then
dilated by 1/16 of the side. BigGAN's objects vary across samples far more than its backgrounds
(REFERENCE §9: this marks the object better than a fixed centre box), but the region is the
union of where the object lies over all seeds, so it holds some background too. Per seed
(`seed_object`), the object is then the region's pixels whose centre colour lies more than
10 Delta E*ab (about four just-noticeable differences) from that seed's own background colour
(the median colour outside the region); with a busy background where that keeps under 1% of the
pixels, the region itself. With one seed there is no variation: the whole frame is the object
and background_share is 0. Photometry, the explained energies and background_share use the
per-seed object.

Cost: the flow and its fits take most of the time, so geometry and the explained change come
from the first `geometry_seeds` (4) seeds of a direction, photometry and where from all of them,
and only the frames measured are shrunk and converted. All pairs of a direction are fitted and
refined together (arrays over pairs, one OpenCV call per colour conversion): few Python-level
calls, so a worker thread measuring beside `score` seldom holds the GIL.

Explained change (what the label rule compares): per seed, the end-to-end change energy inside
the object region E, and how much of it each model removes: a geometric component (shift-x,
shift-y, zoom, rotation: frame -P warped by that part of the composed similarity, compared with
frame +P), a photometric one (a mean L* shift, an L* contrast scaling, a chroma scaling, a
mean a*b* shift), and `shape`: what the full similarity followed by the full photometric fit
leaves. A false rotation read off a pure brightness change (REFERENCE §9) removes nothing and
scores nothing. Energies are summed over seeds before the shares are taken.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import EPS, component, geometry_of, walk_motions, warp

GEOMETRY = ("shift-x", "shift-y", "zoom", "rotation")
PHOTOMETRY = ("brightness", "contrast", "saturation", "color")


# ---------------------------------------------------------------- colour and the object
def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 sRGB -> float32 CIELAB (L* in 0..100, a*, b* about -128..127); every
    image in one OpenCV call (the conversion is per pixel)."""
    H, W = rgb.shape[-3:-1]
    tall = np.ascontiguousarray(rgb.reshape(-1, W, 3), dtype=np.float32) / 255.0
    return cv2.cvtColor(tall, cv2.COLOR_RGB2Lab).reshape(rgb.shape[:-3] + (H, W, 3))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 RGB -> (..., H, W) uint8 luma, every image in one OpenCV call."""
    H, W = rgb.shape[-3:-1]
    tall = np.ascontiguousarray(rgb.reshape(-1, W, 3))
    return cv2.cvtColor(tall, cv2.COLOR_RGB2GRAY).reshape(rgb.shape[:-3] + (H, W))


def object_mask(centre_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(core, region), (H, W) bool each, from the centre frames of S seeds, (S, H, W, 3) Lab:
    core = the pixels whose colour varies most across seeds (module docstring), region = core
    dilated by 1/16 of the side. Both all True when S < 2 or nothing varies."""
    S, H, W, _ = centre_lab.shape
    everything = np.ones((H, W), bool)
    if S < 2:
        return everything, everything
    spread = np.sqrt(centre_lab.var(axis=0).sum(-1))                      # (H, W)
    spread = cv2.GaussianBlur(spread.astype(np.float32), (0, 0), max(H, W) / 32)
    lo, hi = float(spread.min()), float(spread.max())
    if hi - lo < 1e-3 * max(hi, 1.0):
        return everything, everything
    scaled = np.round((spread - lo) / (hi - lo) * 255).astype(np.uint8)
    _, core = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    grow = max(1, round(max(H, W) / 16))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    region = cv2.dilate(core, kernel).astype(bool)
    if not core.any():
        return everything, everything
    return core.astype(bool), region


def _median(v: np.ndarray) -> np.ndarray:
    """The median along axis 1 of (S, N, C) (np.median's value, by one partition: np.median's
    checks cost more than the partition on these small arrays)."""
    n = v.shape[1]
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(v, (lo, hi), axis=1)
    return (part[:, lo] + part[:, hi]) / 2


def seed_objects(centres: np.ndarray, region: np.ndarray, apart: float = 10.0) -> np.ndarray:
    """(S, H, W) bool: per seed, the pixels of its centre frame ((S, H, W, 3) Lab) inside
    `region` whose colour is more than `apart` Delta E*ab from the seed's own background colour
    (the median colour outside the region). A seed gets the region itself when nothing is
    outside it, or when fewer than 1% of the pixels would remain (a busy background: every
    region pixel differs)."""
    S = centres.shape[0]
    if region.all():
        return np.broadcast_to(region, (S, *region.shape)).copy()
    background = _median(centres[:, ~region])                               # (S, 3)
    far = np.sqrt(((centres - background[:, None, None]) ** 2).sum(-1)) > apart
    mask = region & far
    busy = mask.mean((1, 2)) < 0.01
    mask[busy] = region
    return mask


def seed_object(centre: np.ndarray, region: np.ndarray, apart: float = 10.0) -> np.ndarray:
    """(H, W) bool: seed_objects for one seed's centre frame (H, W, 3) Lab."""
    return seed_objects(centre[None], region, apart)[0]


# ---------------------------------------------------------------- photometry
def photometries(lab0: np.ndarray, lab1: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """The ends' photometric measures of S seeds over their masks: lab0, lab1 (S, H, W, 3) Lab,
    masks (S, H, W) bool; each measure (S,)."""
    w = masks.reshape(masks.shape[0], -1).astype(np.float64)                # (S, N)
    n = np.maximum(w.sum(1), 1.0)

    def mean(v):                                                            # (S, N) -> (S,)
        return (w * v).sum(1) / n

    def std(v):
        return np.sqrt((w * (v - mean(v)[:, None]) ** 2).sum(1) / n)

    p0, p1 = (x.reshape(x.shape[0], -1, 3).astype(np.float64) for x in (lab0, lab1))
    c0, c1 = np.hypot(p0[..., 1], p0[..., 2]), np.hypot(p1[..., 1], p1[..., 2])
    return {"brightness_delta": mean(p1[..., 0]) - mean(p0[..., 0]),
            "contrast_ratio": (std(p1[..., 0]) + 1e-6) / (std(p0[..., 0]) + 1e-6),
            "saturation_ratio": (mean(c1) + 1e-6) / (mean(c0) + 1e-6),
            "color_shift_a": mean(p1[..., 1]) - mean(p0[..., 1]),
            "color_shift_b": mean(p1[..., 2]) - mean(p0[..., 2])}


def photometry(lab0: np.ndarray, lab1: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """photometries for one seed: (H, W, 3) Lab ends and an (H, W) mask; floats."""
    return {k: float(v[0]) for k, v in photometries(lab0[None], lab1[None], mask[None]).items()}


def photometric_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src (N, 3) Lab mapped as the photometric model fits dst: L* shifted and scaled about its
    mean (brightness, contrast), a*b* scaled about 0 (saturation) and shifted (colour)."""
    L0, L1 = src[:, 0], dst[:, 0]
    c = (L1.std() + 1e-6) / (L0.std() + 1e-6)
    L = L1.mean() + c * (L0 - L0.mean())
    r = (np.hypot(dst[:, 1], dst[:, 2]).mean() + 1e-6) / (np.hypot(src[:, 1], src[:, 2]).mean() + 1e-6)
    ab = r * src[:, 1:]
    ab = ab + (dst[:, 1:].mean(0) - ab.mean(0))
    return np.column_stack([L, ab])


def explained(lab0: np.ndarray, lab1: np.ndarray, mask: np.ndarray, M: np.ndarray,
              measures: dict[str, float]) -> dict[str, float]:
    """Change energy inside the object mask ('total') and how much of it each model removes
    (module docstring), plus 'shape': the energy left by the full similarity + photometric fit."""
    p0, p1 = lab0[mask].astype(np.float64), lab1[mask].astype(np.float64)
    n = p0.shape[0]
    total = float(((p1 - p0) ** 2).sum())
    out = {"total": total}
    for which in GEOMETRY:
        moved = warp(lab0, component(M, which))[mask].astype(np.float64)
        out[which] = max(0.0, total - float(((p1 - moved) ** 2).sum()))
    c, r = measures["contrast_ratio"], measures["saturation_ratio"]
    out["brightness"] = n * measures["brightness_delta"] ** 2
    out["contrast"] = float((((c - 1) * (p0[:, 0] - p0[:, 0].mean())) ** 2).sum())
    out["saturation"] = float((((r - 1) * p0[:, 1:]) ** 2).sum())
    out["color"] = n * (measures["color_shift_a"] ** 2 + measures["color_shift_b"] ** 2)
    both = photometric_fit(warp(lab0, M)[mask].astype(np.float64), p1)
    out["shape"] = min(total, float(((p1 - both) ** 2).sum()))
    return out


# ---------------------------------------------------------------- one direction
@dataclass
class WalkMeasures:
    """One direction over S seeds: per-seed measures (name -> array: (S,) for photometry and
    background_share, (geometry seeds,) for the geometry), energies summed over the geometry
    seeds (explained: name -> energy inside the object; inside, outside: the change energy in
    and out of the object; area: the object's mean area share), the mean end-to-end Delta E
    over all seeds, and the flow's energy and the similarity fits' residual (moving pixels)."""

    per_seed: dict[str, np.ndarray]
    explained: dict[str, float]
    inside: float
    outside: float
    area: float
    delta_e: float
    flow_energy: float
    flow_residual: float
    seeds: int = 0


def shrink(frames: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W, 3) uint8 shrunk (area average) so the larger side is at most `size`. Where
    the factor is a whole number on both sides, every frame goes through OpenCV at once, stacked
    (the averaged blocks then never straddle two frames)."""
    H, W = frames.shape[-3:-1]
    if max(H, W) <= size:
        return frames
    f = size / max(H, W)
    h, w = max(1, round(H * f)), max(1, round(W * f))
    flat = np.ascontiguousarray(frames.reshape(-1, H, W, 3))
    if H % h == 0 and W % w == 0 and H // h == W // w:
        out = cv2.resize(flat.reshape(-1, W, 3), (w, flat.shape[0] * h),
                         interpolation=cv2.INTER_AREA)
    else:
        out = np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in flat])
    return out.reshape(frames.shape[:-3] + (h, w, 3))


def flow_frames(T: int, stride: int) -> list[int]:
    """The frames of a T-frame walk whose consecutive pairs the flow measures: every `stride`-th
    from 0, and always the last."""
    keep = list(range(0, T, max(1, stride)))
    return keep if keep[-1] == T - 1 else [*keep, T - 1]


def measure_walks(frames: np.ndarray, *, size: int = 64, moving: float = 0.10,
                  geometry_seeds: int = 4, flow_stride: int = 2) -> WalkMeasures:
    """Measure one direction's walks: frames (S, T, H, W, 3) uint8 RGB, frame 0 at -P, T-1 at
    +P; shrunk to at most `size` pixels a side first (area average). The flow, the similarity and
    the explained energies (the costly part) come from the first `geometry_seeds` seeds; the
    photometry, background_share and delta_e from all S."""
    S, T = frames.shape[:2]
    c = (T - 1) // 2
    n_geo = min(S, max(1, geometry_seeds))
    # only the frames that are measured are shrunk: both ends and the centre of every walk, and
    # the flow's frames of the geometry seeds
    lab = to_lab(shrink(frames[:, [0, c, T - 1]], size))                   # (S, 3, H, W, 3)
    gray = to_gray(shrink(frames[:n_geo, flow_frames(T, flow_stride)], size))
    H, W = lab.shape[2:4]
    ends, centre = lab[:, [0, 2]], lab[:, 1]
    _, region = object_mask(centre)
    objs = seed_objects(centre, region)                                     # (S, H, W)
    lab0, lab1 = ends[:, 0], ends[:, 1]
    per_seed = photometries(lab0, lab1, objs)
    d2 = ((lab1 - lab0).astype(np.float64) ** 2).sum(-1)                   # (S, H, W)
    d2_in = (d2 * objs).sum((1, 2))
    d2_out = d2.sum((1, 2)) - d2_in
    per_seed["background_share"] = d2_out / np.maximum(d2_in + d2_out, EPS)
    de = np.sqrt(d2)
    delta_e = float(np.maximum(de.mean((1, 2)), (de * objs).sum((1, 2))
                               / np.maximum(objs.sum((1, 2)), 1)).mean())
    motion, flow_energy, flow_residual = walk_motions(gray, moving)
    geometry: dict[str, list[float]] = {}
    energies: dict[str, float] = {}
    for s in range(n_geo):
        m = {k: float(v[s]) for k, v in per_seed.items()}
        g = geometry_of(motion[s], H, W)
        for k, v in g.items():
            geometry.setdefault(k, []).append(v)
        for k, v in explained(lab0[s], lab1[s], objs[s], motion[s], m).items():
            energies[k] = energies.get(k, 0.0) + v
    per_seed.update({k: np.asarray(v) for k, v in geometry.items()})
    inside, outside = float(d2_in[:n_geo].sum()), float(d2_out[:n_geo].sum())
    area = float(objs[:n_geo].mean())
    return WalkMeasures(per_seed, energies, inside, outside, area, delta_e, flow_energy,
                        flow_residual, S)
