"""Frames of latent walks: generated in batches, tiled into a grid, with a label column.

Frame layout: one row per direction, one column per sample, each cell R x R pixels (R the
generator's resolution), plus, with labels, a black column of label_width(R) pixels on the left
holding each row's direction index. yuv420p video needs even sizes: an odd height or width gets
one black pixel row/column at the bottom/right (never happens for BigGAN: R is even).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

BATCH_SIZE = 16        # images per generator call (RenderConfig.batch_size's default)

from .walks import walk_latents


def label_width(resolution: int, labels: Sequence[str] | None = None) -> int:
    """Width in pixels of the label column for cells of `resolution` pixels (even, >= 32),
    widened to fit the longest of `labels` (captions such as '5 zoom') when given."""
    base = max(32, resolution // 4 // 2 * 2)
    if not labels or isinstance(labels, bool):
        return base
    font, draw = _font(base), ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = max(draw.textbbox((0, 0), str(t), font=font)[2] for t in labels) + base // 4
    width = max(base, text)
    return width + width % 2


def frame_size(rows: int, cols: int, resolution: int,
               labels: bool | Sequence[str] | None) -> tuple[int, int]:
    """(height, width) of a frame of rows x cols cells, label column included, padded to even."""
    h = rows * resolution
    w = cols * resolution + (label_width(resolution, labels) if labels else 0)
    return h + h % 2, w + w % 2


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 3, H, W) uint8 in 0..255 (clamped, rounded)."""
    return ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)


def generate(G, latents: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N, D) latents -> (N, 3, R, R) uint8 images, batch_size at a time, without autograd."""
    parts = []
    with torch.inference_mode():
        for i in range(0, latents.shape[0], batch_size):
            parts.append(to_uint8(G(latents[i:i + batch_size])))
    return torch.cat(parts)


def tile(cells: torch.Tensor) -> torch.Tensor:
    """(..., A, B, 3, R, R) uint8 -> (..., A*R, B*R, 3): A rows and B columns of cells."""
    *lead, a, b, c, h, w = cells.shape
    x = cells.movedim(-3, -1)                       # (..., A, B, R, R, 3)
    x = x.transpose(-4, -3)                         # (..., A, R, B, R, 3)
    return x.reshape(*lead, a * h, b * w, c)


class Canvas:
    """A black frame with the label column drawn once; frame(grid) pastes a tiled grid in."""

    def __init__(self, rows: int, cols: int, resolution: int, labels: Sequence[str] | None):
        self.left = label_width(resolution, labels) if labels else 0
        self.base = np.zeros((*frame_size(rows, cols, resolution, labels), 3), np.uint8)
        if labels:
            if len(labels) != rows:
                raise ValueError(f"{len(labels)} labels for {rows} rows")
            self.base[:rows * resolution, :self.left] = label_column(labels, resolution, self.left)

    def frame(self, grid: np.ndarray) -> np.ndarray:
        """grid: (rows*R, cols*R, 3) uint8 -> the full (H, W, 3) frame."""
        out = self.base.copy()
        out[:grid.shape[0], self.left:self.left + grid.shape[1]] = grid
        return out


def _font(width: int):
    """The label font for a column `width` pixels wide (at its narrowest)."""
    try:
        return ImageFont.load_default(size=max(10, width * 3 // 8))
    except TypeError:                                   # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def label_column(labels: Sequence[str], resolution: int, width: int) -> np.ndarray:
    """(len(labels)*R, width, 3) uint8: white text centred in each row, on black."""
    font = _font(label_width(resolution))
    img = Image.new("RGB", (width, len(labels) * resolution))
    draw = ImageDraw.Draw(img)
    for k, text in enumerate(labels):
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        x = (width - (x1 - x0)) / 2 - x0
        y = k * resolution + (resolution - (y1 - y0)) / 2 - y0
        draw.text((x, y), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def walk_frames(G, directions: torch.Tensor, z: torch.Tensor, t: torch.Tensor, path_size: float,
                *, labels: Sequence[str] | None = None,
                batch_size: int = BATCH_SIZE) -> Iterator[np.ndarray]:
    """The frames of a grid video, generated lazily in batches.

    G: generator with z_dim, resolution R, G(z) -> (B, 3, R, R) in [-1, 1].
    directions: (K, D) unit rows (row k of the grid); z: (S, D) samples (column s); both on G's
    device. t: (T,) walk positions in [-1, 1], one frame each. labels: K strings or None.
    Yields T arrays (H, W, 3) uint8 of frame_size(K, S, R, labels): cell (k, s) of frame i is
    G(z_s - (z_s.q_k) q_k + t_i * path_size * q_k). At most max(batch_size, K*S) images live at once.
    """
    k, s, d = directions.shape[0], z.shape[0], z.shape[1]
    canvas = Canvas(k, s, G.resolution, labels)
    per_chunk = max(1, batch_size // (k * s))            # frames per chunk
    for start in range(0, t.shape[0], per_chunk):
        tc = t[start:start + per_chunk].to(z.device)
        lat = walk_latents(z, directions, tc, path_size)  # (K, Tc, S, D)
        lat = lat.transpose(0, 1).reshape(-1, d)          # (Tc*K*S, D), frame-major
        cells = generate(G, lat, batch_size)              # (Tc*K*S, 3, R, R)
        grids = tile(cells.view(-1, k, s, *cells.shape[1:])).cpu().numpy()  # (Tc, K*R, S*R, 3)
        for grid in grids:
            yield canvas.frame(grid)


def strip_image(G, directions: torch.Tensor, z: torch.Tensor, steps: int, path_size: float,
                *, labels: Sequence[str] | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 PNG strip: row k walks one sample z ((D,) or (1, D)) along directions[k];
    column j is t = -1 + 2j/(steps-1), i.e. `steps` positions evenly over [-1, 1]."""
    z = z.reshape(1, -1)
    d = z.shape[1]
    t = torch.linspace(-1.0, 1.0, steps, device=z.device)
    lat = walk_latents(z, directions, t, path_size).reshape(-1, d)   # (K*steps, D)
    cells = generate(G, lat, batch_size)                             # (K*steps, 3, R, R)
    grid = tile(cells.view(directions.shape[0], steps, *cells.shape[1:])).cpu().numpy()
    return Canvas(directions.shape[0], steps, G.resolution, labels).frame(grid)
