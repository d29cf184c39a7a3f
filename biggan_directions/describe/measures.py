"""What one direction's walks do, measured: geometry from optical flow, photometry in CIELAB, where.

Input: the walks of one direction over S seeds, (S, T, H, W, 3) uint8 RGB, frame 0 at -P and
frame T-1 at +P (the linear walk `score` generates). Per seed:

Geometry. Dense optical flow between consecutive frames of every `flow_stride`-th frame (2: frames
0, 2, 4, 6, 8 of a 9-frame walk; the first and the last always): OpenCV's Farneback
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


@lru_cache(maxsize=8)
def _similarity_normal(H: int, W: int) -> np.ndarray:
    """(H*W, 16): each pixel's term of X^T X for the similarity's unknowns (a, b, tx, ty), whose
    rows are [x, -y, 1, 0] (the flow's x) and [y, x, 0, 1] (its y); read only."""
    x, y = (v.ravel() for v in centred_grid(H, W))
    one, zero = np.ones_like(x), np.zeros_like(x)
    rx = np.stack([x, -y, one, zero], -1)
    ry = np.stack([y, x, zero, one], -1)
    out = (rx[:, :, None] * rx[:, None, :] + ry[:, :, None] * ry[:, None, :]).reshape(-1, 16)
    out.flags.writeable = False
    return out


def _similarity(coef: np.ndarray) -> np.ndarray:
    """(P, 3, 3) centred maps q -> A q + t from (P, 4) coefficients (a, b, tx, ty),
    A = [[1 + a, -b], [b, 1 + a]]."""
    a, b, tx, ty = coef.T
    M = np.zeros((coef.shape[0], 3, 3))
    M[:, 0, 0] = M[:, 1, 1] = 1 + a
    M[:, 0, 1], M[:, 1, 0] = -b, b
    M[:, 0, 2], M[:, 1, 2], M[:, 2, 2] = tx, ty, 1.0
    return M


def fit_similarities(u: np.ndarray, moving: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity of each of P flow fields (P, H, W, 2) about the image centre, on
    its moving pixels. Returns (M (P, 3, 3), flow energy (P,), residual energy (P,), moving
    pixels (P, H, W) bool): M maps centred pixel coordinates q -> A q + t from a frame to the
    next; the energies are summed over the moving pixels. A pair where nothing moves (its 99th
    percentile flow under a fiftieth of a pixel) gets the identity, zero energies and no pixels."""
    P, H, W, _ = u.shape
    ux = u[..., 0].reshape(P, -1).astype(np.float64)
    uy = u[..., 1].reshape(P, -1).astype(np.float64)
    mag = np.hypot(ux, uy)
    k = int(0.99 * (H * W - 1))
    top = np.partition(mag, k, axis=1)[:, k]                 # the 99th percentile (lower)
    still = top < 0.02
    sel = (mag > moving * top[:, None]) & ~still[:, None]
    w = sel.astype(np.float64)
    x, y = (v.ravel() for v in centred_grid(H, W))
    XtX = (w @ _similarity_normal(H, W)).reshape(P, 4, 4)
    wx, wy = w * ux, w * uy
    Xtt = np.stack([wx @ x + wy @ y, wy @ x - wx @ y, wx.sum(1), wy.sum(1)], -1)
    coef = np.zeros((P, 4))
    ok = ~still & (np.linalg.det(XtX) > 1e-9)
    if ok.any():
        coef[ok] = np.linalg.solve(XtX[ok], Xtt[ok][..., None])[..., 0]
    a, b, tx, ty = (c[:, None] for c in coef.T)
    residual = (w * ((a * x - b * y + tx - ux) ** 2 + (b * x + a * y + ty - uy) ** 2)).sum(1)
    energy = (w * (ux ** 2 + uy ** 2)).sum(1)
    sel &= ok[:, None]
    energy, residual = np.where(ok, energy, 0.0), np.where(ok, residual, 0.0)
    return _similarity(coef), energy, residual, sel.reshape(P, H, W)


def _sobel(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y derivatives of (P, H, W) images per pixel: OpenCV's 3x3 Sobel / 8 with its default
    border (reflect-101), on every image at once."""
    p = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    dx = p[:, :, 2:] - p[:, :, :-2]                                    # (P, H + 2, W)
    dy = p[:, 2:, :] - p[:, :-2, :]                                    # (P, H, W + 2)
    gx = (dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]) / 8
    gy = (dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]) / 8
    return gx, gy


def refine(prev: np.ndarray, nxt: np.ndarray, M: np.ndarray, weights: np.ndarray,
           iters: int = 3) -> np.ndarray:
    """P similarities M (P, 3, 3), centred, prev -> next) refined by a direct fit to the
    intensities (Lucas-Kanade on the similarity's 4 parameters plus a gain and an offset of the
    intensity, Gauss-Newton from M) over the pixels where `weights` (P, H, W) is nonzero; prev
    and nxt (P, H, W) float32, already smoothed. The gain and offset make a brightness or
    contrast change read as no motion. All pairs step together; a pair stops when its step is
    under a thousandth (of a pixel or of the scale), and keeps its M when it has fewer than 16
    pixels or its fit fails."""
    P, H, W = prev.shape
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    w = (weights.reshape(P, -1) > 0).astype(np.float64)
    active = w.sum(1) >= 16
    x, y = (v.ravel() for v in centred_grid(H, W))
    I0 = prev.reshape(P, -1).astype(np.float64)
    minus_one = np.full_like(I0, -1.0)
    A, t = M[:, :2, :2].copy(), M[:, :2, 2].copy()
    g, h = np.ones(P), np.zeros(P)
    warped = np.empty_like(nxt)
    failed = np.zeros(P, bool)
    for _ in range(iters):
        if not active.any():
            break
        for p in np.flatnonzero(active):
            affine = np.hstack([A[p], (c + t[p] - A[p] @ c)[:, None]])
            warped[p] = cv2.warpAffine(nxt[p], affine, (W, H),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_REPLICATE)     # I1(A q + t)
        gx, gy = (v.reshape(P, -1).astype(np.float64) for v in _sobel(warped))
        wx = A[:, 0, 0, None] * x + A[:, 0, 1, None] * y + t[:, 0, None]
        wy = A[:, 1, 0, None] * x + A[:, 1, 1, None] * y + t[:, 1, None]
        J = np.stack([gx * wx + gy * wy, gy * wx - gx * wy, gx, gy, -I0, minus_one], 1)
        r = warped.reshape(P, -1) - g[:, None] * I0 - h[:, None]
        Jw = J * w[:, None]                                                # (P, 6, HW)
        JtJ = Jw @ J.transpose(0, 2, 1) + 1e-6 * np.eye(6)
        Jtr = (Jw @ r[..., None])[..., 0]
        step = np.zeros((P, 6))
        good = active & np.isfinite(JtJ).all((1, 2)) & np.isfinite(Jtr).all(1) \
            & (np.abs(np.linalg.det(JtJ)) > 0)
        if good.any():
            step[good] = np.linalg.solve(JtJ[good], -Jtr[good][..., None])[..., 0]
        failed |= active & ~good
        active &= good
        da, db, dtx, dty, dg, dh = (np.where(active, s, 0.0) for s in step.T)
        D = np.zeros((P, 2, 2))
        D[:, 0, 0] = D[:, 1, 1] = 1 + da
        D[:, 0, 1], D[:, 1, 0] = -db, db                    # an increment composed after A q + t
        A, t = D @ A, (D @ t[..., None])[..., 0] + np.stack([dtx, dty], -1)
        g, h = g + dg, h + dh
        active &= np.abs(step[:, :4]).max(1) >= 1e-3
    out = M.copy()
    out[:, :2, :2], out[:, :2, 2] = A, t
    bad = failed | ~np.isfinite(out).all((1, 2))
    out[bad] = M[bad]
    return out


def walk_motions(gray: np.ndarray, moving: float) -> tuple[np.ndarray, float, float]:
    """(G, F, H, W) uint8 frames of G walks (F of each: flow_frames' choice, first to last) ->
    (composed 3x3 maps first -> last frame in centred coordinates (G, 3, 3), flow energy,
    residual energy summed over all pairs). Each of the G x (F - 1) consecutive pairs: Farneback
    flow fitted on its moving pixels (fit_similarities), then refined on them and 2 px around
    them (refine), all pairs of all walks at once."""
    n, T, H, W = gray.shape
    prev, nxt = gray[:, :-1].reshape(-1, H, W), gray[:, 1:].reshape(-1, H, W)
    u = np.stack([flow(a, b) for a, b in zip(prev, nxt)])                 # (P, H, W, 2)
    Ms, energy, residual, sel = fit_similarities(u, moving)
    grow = np.ones((5, 5), np.uint8)
    moved = energy > 0
    if moved.any():
        smooth = np.stack([cv2.GaussianBlur(f.astype(np.float32), (0, 0), 1.0)
                           for f in gray.reshape(-1, H, W)]).reshape(n, T, H, W)
        weights = np.stack([cv2.dilate(s.astype(np.uint8), grow) if m else np.zeros((H, W), np.uint8)
                            for s, m in zip(sel, moved)])
        Ms = refine(smooth[:, :-1].reshape(-1, H, W), smooth[:, 1:].reshape(-1, H, W), Ms,
                    weights)
    composed = np.tile(np.eye(3), (n, 1, 1))
    for i in range(T - 1):
        composed = Ms.reshape(n, T - 1, 3, 3)[:, i] @ composed
    return composed, float(energy.sum()), float(residual.sum())


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
