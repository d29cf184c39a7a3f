"""What one direction's walks do, measured: geometry from optical flow, photometry in CIELAB, where.

Input: the walks of one direction over S seeds, (S, T, H, W, 3) uint8 RGB, frame 0 at -P and
frame T-1 at +P (the linear walk `score` generates). Per seed:

Geometry. Dense optical flow between consecutive frames: OpenCV's Farneback
(opencv-python-headless: a maintained, pip-installable C++ implementation, about 1.6 ms per
64 px pair here; dense rather than sparse corners because a BigGAN walk has few stable corners
on soft textures, and a dense field gives `motion_explained`). Each pair's flow is fitted by
least squares to a similarity about the image centre, u(q) = (A - I) q + t with A = s R, on the
MOVING pixels only (|flow| above `moving` x the pair's 99th-percentile flow): fitting every
pixel lets the static background pull the fit to about half the true motion (REFERENCE §9).
That fit still reads low where the flow is blurred across an object's outline by Farneback's
window (measured on tests.support.PlantedScene: 2.0 of a 3.75 degree turn per pair, x1.032 of a
x1.043 zoom), so it is then refined by a direct fit of the similarity to the intensities on the
same moving pixels (`refine`: Gauss-Newton Lucas-Kanade from the flow's fit, with an intensity
gain and offset so that a brightness change reads as no motion; 3.73 degrees, x1.043).
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
from the first `geometry_seeds` (4) seeds of a direction, photometry and where from all of them.

Explained change (what the label rule compares): per seed, the end-to-end change energy inside
the object region E, and how much of it each model removes: a geometric component (shift-x,
shift-y, zoom, rotation: frame -P warped by that part of the composed similarity, compared with
frame +P), a photometric one (a mean L* shift, an L* contrast scaling, a chroma scaling, a
mean a*b* shift), and `shape`: what the full similarity followed by the full photometric fit
leaves. A false rotation read off a pure brightness change (REFERENCE §9) removes nothing and
scores nothing. Energies are summed over seeds before the shares are taken.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

GEOMETRY = ("shift-x", "shift-y", "zoom", "rotation")
PHOTOMETRY = ("brightness", "contrast", "saturation", "color")
EPS = 1e-12


# ---------------------------------------------------------------- colour and the object
def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 sRGB -> float32 CIELAB (L* in 0..100, a*, b* about -128..127)."""
    flat = rgb.reshape(-1, *rgb.shape[-3:])
    out = np.stack([cv2.cvtColor(f.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab) for f in flat])
    return out.reshape(rgb.shape[:-3] + out.shape[1:])


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


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


def seed_object(centre: np.ndarray, region: np.ndarray, apart: float = 10.0) -> np.ndarray:
    """(H, W) bool: the pixels of one seed's centre frame ((H, W, 3) Lab) inside `region` whose
    colour is more than `apart` Delta E*ab from the seed's own background colour (the median
    colour outside the region). The region itself when nothing is outside it, or when fewer
    than 1% of the pixels would remain (a busy background: every region pixel differs)."""
    if region.all():
        return region
    background = np.median(centre[~region], axis=0)
    far = np.sqrt(((centre - background) ** 2).sum(-1)) > apart
    mask = region & far
    return mask if mask.mean() >= 0.01 else region


# ---------------------------------------------------------------- geometry
def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Farneback flow (H, W, 2) float32 between two uint8 gray frames: prev(p) ~ next(p + u)."""
    H, W = prev.shape
    win = max(9, min(H, W) // 8) | 1
    return cv2.calcOpticalFlowFarneback(prev, nxt, None, pyr_scale=0.5, levels=3, winsize=win,
                                        iterations=3, poly_n=5, poly_sigma=1.1, flags=0)


@lru_cache(maxsize=8)
def centred_grid(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) x and y pixel coordinates relative to the image centre (cached: read only)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    x, y = x - (W - 1) / 2, y - (H - 1) / 2
    x.flags.writeable = y.flags.writeable = False
    return x, y


def fit_similarity(u: np.ndarray, moving: float) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Least-squares similarity of one flow field (H, W, 2) about the image centre, on its
    moving pixels. Returns (M, flow energy, residual energy, moving pixels (H, W) bool): M a 3x3
    map of centred pixel coordinates q -> A q + t from this frame to the next; energies summed
    over the moving pixels."""
    H, W, _ = u.shape
    mag = np.hypot(u[..., 0], u[..., 1]).ravel()
    k = int(0.99 * (mag.size - 1))
    top = float(np.partition(mag, k)[k])                 # the 99th percentile (lower)
    if top < 0.02:                                    # nothing moves (a fiftieth of a pixel)
        return np.eye(3), 0.0, 0.0, np.zeros((H, W), bool)
    sel = (mag > moving * top).reshape(H, W)
    x, y = centred_grid(H, W)
    x, y, ux, uy = x[sel], y[sel], u[..., 0][sel].astype(np.float64), u[..., 1][sel].astype(np.float64)
    n = x.size
    # unknowns (a, b, tx, ty): ux = a x - b y + tx, uy = b x + a y + ty, with A = [[1+a, -b], [b, 1+a]]
    X = np.zeros((2 * n, 4))
    X[:n, 0], X[:n, 1], X[:n, 2] = x, -y, 1.0
    X[n:, 0], X[n:, 1], X[n:, 3] = y, x, 1.0
    target = np.concatenate([ux, uy])
    try:
        coef = np.linalg.solve(X.T @ X, X.T @ target)
    except np.linalg.LinAlgError:
        return np.eye(3), 0.0, 0.0, np.zeros((H, W), bool)
    a, b, tx, ty = coef
    residual = float(((X @ coef - target) ** 2).sum())
    M = np.array([[1 + a, -b, tx], [b, 1 + a, ty], [0.0, 0.0, 1.0]])
    return M, float((target ** 2).sum()), residual, sel


def refine(prev: np.ndarray, nxt: np.ndarray, M: np.ndarray, weights: np.ndarray,
           iters: int = 3) -> np.ndarray:
    """The similarity M (centred 3x3, prev -> next) refined by a direct fit to the intensities
    (Lucas-Kanade on the similarity's 4 parameters plus a gain and an offset of the intensity,
    Gauss-Newton from M) over the pixels where `weights` (H, W) is nonzero. The gain and offset
    make a brightness or contrast change read as no motion."""
    H, W = prev.shape
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    sel = weights.ravel() > 0
    if sel.sum() < 16:
        return M
    I0 = cv2.GaussianBlur(prev.astype(np.float32), (0, 0), 1.0).ravel()[sel]
    I1 = cv2.GaussianBlur(nxt.astype(np.float32), (0, 0), 1.0)
    x, y = (v.astype(np.float32).ravel()[sel] for v in centred_grid(H, W))
    A, t, g, h = M[:2, :2].copy(), M[:2, 2].copy(), 1.0, 0.0
    minus_one = np.full_like(I0, -1.0)
    for _ in range(iters):
        affine = np.hstack([A, (c + t - A @ c)[:, None]])
        I1w = cv2.warpAffine(I1, affine, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)                # I1(A q + t)
        gx = cv2.Sobel(I1w, cv2.CV_32F, 1, 0, ksize=3).ravel()[sel] / 8
        gy = cv2.Sobel(I1w, cv2.CV_32F, 0, 1, ksize=3).ravel()[sel] / 8
        wx, wy = A[0, 0] * x + A[0, 1] * y + t[0], A[1, 0] * x + A[1, 1] * y + t[1]
        J = np.stack([gx * wx + gy * wy, gy * wx - gx * wy, gx, gy, -I0, minus_one],
                     -1).astype(np.float64)                               # (n, 6)
        r = (I1w.ravel()[sel] - g * I0 - h).astype(np.float64)
        try:
            step = np.linalg.solve(J.T @ J + 1e-6 * np.eye(6), -(J.T @ r))
        except np.linalg.LinAlgError:
            return M
        da, db, dtx, dty, dg, dh = step
        D = np.array([[1 + da, -db], [db, 1 + da]])       # an increment composed after A q + t
        A, t, g, h = D @ A, D @ t + np.array([dtx, dty]), g + dg, h + dh
        if np.abs(step[:4]).max() < 1e-3:       # a thousandth of a pixel, or of the scale
            break
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = A, t
    return out if np.isfinite(out).all() else M


def walk_motion(gray: np.ndarray, moving: float) -> tuple[np.ndarray, float, float]:
    """(T, H, W) uint8 frames of one walk -> (composed 3x3 map -P -> +P in centred coordinates,
    flow energy, residual energy) summed over the T-1 consecutive pairs. Each pair: Farneback
    flow fitted on its moving pixels (fit_similarity), then refined on them (refine)."""
    M, energy, residual = np.eye(3), 0.0, 0.0
    grow = np.ones((5, 5), np.uint8)
    for i in range(gray.shape[0] - 1):
        u = flow(gray[i], gray[i + 1])
        Mi, e, r, sel = fit_similarity(u, moving)
        if e > 0:                           # the moving pixels and 2 px around them
            Mi = refine(gray[i], gray[i + 1], Mi, cv2.dilate(sel.astype(np.uint8), grow))
        M, energy, residual = Mi @ M, energy + e, residual + r
    return M, energy, residual


def geometry_of(M: np.ndarray, H: int, W: int) -> dict[str, float]:
    """The measures of a composed map: shift fractions, scale ratio, rotation (+ CCW on screen)."""
    A = M[:2, :2]
    scale = math.sqrt(max(abs(float(np.linalg.det(A))), EPS))
    # y points down on screen, so a counter-clockwise turn there has A[1, 0] < 0
    rotation = -math.degrees(math.atan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1]))
    return {"shift_x_fraction": float(M[0, 2]) / W, "shift_y_fraction": float(M[1, 2]) / H,
            "scale_ratio": scale, "rotation_degrees": rotation}


def component(M: np.ndarray, which: str) -> np.ndarray:
    """The part `which` of a composed similarity (centred 3x3): shift-x, shift-y, zoom, rotation,
    or 'all'."""
    if which == "all":
        return M
    A = M[:2, :2]
    out = np.eye(3)
    if which == "shift-x":
        out[0, 2] = M[0, 2]
    elif which == "shift-y":
        out[1, 2] = M[1, 2]
    elif which == "zoom":
        out[:2, :2] *= math.sqrt(max(abs(float(np.linalg.det(A))), EPS))
    elif which == "rotation":
        angle = math.atan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1])
        out[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    else:
        raise ValueError(which)
    return out


def warp(image: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 image moved by the centred map M (q -> A q + t): out(A q + t) = image(q)."""
    H, W = image.shape[:2]
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    A, t = M[:2, :2], M[:2, 2]
    affine = np.hstack([A, (c + t - A @ c)[:, None]]).astype(np.float64)
    return cv2.warpAffine(image, affine, (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------- photometry
def photometry(lab0: np.ndarray, lab1: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The ends' photometric measures over the mask (both (H, W, 3) Lab)."""
    p0, p1 = lab0[mask].astype(np.float64), lab1[mask].astype(np.float64)          # (N, 3)
    c0, c1 = np.hypot(p0[:, 1], p0[:, 2]), np.hypot(p1[:, 1], p1[:, 2])
    da, db = p1[:, 1].mean() - p0[:, 1].mean(), p1[:, 2].mean() - p0[:, 2].mean()
    return {"brightness_delta": float(p1[:, 0].mean() - p0[:, 0].mean()),
            "contrast_ratio": float((p1[:, 0].std() + 1e-6) / (p0[:, 0].std() + 1e-6)),
            "saturation_ratio": float((c1.mean() + 1e-6) / (c0.mean() + 1e-6)),
            "color_shift_a": float(da), "color_shift_b": float(db)}


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
    """(S, T, H, W, 3) uint8 shrunk (area average) so the larger side is at most `size`."""
    S, T, H, W, _ = frames.shape
    if max(H, W) <= size:
        return frames
    f = size / max(H, W)
    h, w = max(1, round(H * f)), max(1, round(W * f))
    return np.stack([np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
                               for x in walk]) for walk in frames])


def measure_walks(frames: np.ndarray, *, size: int = 128, moving: float = 0.10,
                  geometry_seeds: int = 4) -> WalkMeasures:
    """Measure one direction's walks: frames (S, T, H, W, 3) uint8 RGB, frame 0 at -P, T-1 at
    +P; shrunk to at most `size` pixels a side first (area average). The flow, the similarity and
    the explained energies (the costly part) come from the first `geometry_seeds` seeds; the
    photometry, background_share and delta_e from all S."""
    frames = shrink(frames, size)
    S, T, H, W, _ = frames.shape
    c = (T - 1) // 2
    ends = to_lab(frames[:, [0, T - 1]])                                   # (S, 2, H, W, 3)
    centre = to_lab(frames[:, c])                                          # (S, H, W, 3)
    _, region = object_mask(centre)
    per_seed: dict[str, list[float]] = {}
    energies: dict[str, float] = {}
    inside = outside = delta_e = flow_energy = flow_residual = area = 0.0
    n_geo = min(S, max(1, geometry_seeds))
    for s in range(S):
        obj = seed_object(centre[s], region)
        lab0, lab1 = ends[s, 0], ends[s, 1]
        m = photometry(lab0, lab1, obj)
        d2 = ((lab1 - lab0).astype(np.float64) ** 2).sum(-1)              # (H, W)
        m["background_share"] = float(d2[~obj].sum() / max(d2.sum(), EPS))
        if s < n_geo:
            gray = np.stack([to_gray(x) for x in frames[s]])
            M, e, r = walk_motion(gray, moving)
            flow_energy, flow_residual = flow_energy + e, flow_residual + r
            m.update(geometry_of(M, H, W))
            for k, v in explained(lab0, lab1, obj, M, m).items():
                energies[k] = energies.get(k, 0.0) + v
            inside += float(d2[obj].sum())
            outside += float(d2[~obj].sum())
            area += float(obj.mean()) / n_geo
        for k, v in m.items():
            per_seed.setdefault(k, []).append(v)
        de = np.sqrt(d2)
        delta_e += max(float(de.mean()), float(de[obj].mean())) / S
    return WalkMeasures({k: np.asarray(v) for k, v in per_seed.items()}, energies, inside,
                        outside, area, delta_e, flow_energy, flow_residual, S)
