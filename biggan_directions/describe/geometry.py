"""Geometry of a walk: dense optical flow between its frames, fitted to a similarity about the image centre.

Dense optical flow between consecutive frames of every `flow_stride`-th frame (2: frames
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
The pairs' transforms are composed over the walk (walk_motions); geometry_of reads the shift,
scale and rotation off the composed map, component and warp take it apart and apply it
(measures.explained).
"""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

EPS = 1e-12


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
