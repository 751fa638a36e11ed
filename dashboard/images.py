"""Pure image helpers for the dashboard: exact-pixel PNGs, error heatmaps, picture grids.

No streamlit here, so these are cheap to import and easy to test.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Fixed colour scale for error heatmaps so two heatmaps can be compared by eye:
# black = no error, through purple and orange, to pale yellow = error of HEATMAP_MAX or more.
HEATMAP_MAX = 0.5
_HEAT_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_HEAT_RGB = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 with rounding (the same x*255 round trip as the face cache)."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor, so every original pixel stays a crisp square."""
    scale = max(1, int(scale))
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def png_bytes(image: np.ndarray, scale: int = 8) -> bytes:
    """Encode one (H, W, 3) image, float in [0, 1] or uint8, as an enlarged lossless PNG."""
    array = image if image.dtype == np.uint8 else to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(enlarge(array, scale)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_uri(image: np.ndarray, scale: int = 8) -> str:
    """The PNG as a ``data:`` URI, for the one-file offline report."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, scale)).decode("ascii")


def error_map(clean: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error, averaged over the colour channels: (H, W) float32."""
    return np.abs(np.asarray(other, np.float32) - np.asarray(clean, np.float32)).mean(axis=-1)


def heatmap(errors: np.ndarray, vmax: float = HEATMAP_MAX) -> np.ndarray:
    """Colour a (H, W) error map with a fixed dark-to-bright scale; returns uint8 (H, W, 3)."""
    t = np.clip(np.asarray(errors, np.float64) / vmax, 0.0, 1.0)
    channels = [np.interp(t, _HEAT_STOPS, _HEAT_RGB[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


def heatmap_legend(width: int = 256, height: int = 12) -> np.ndarray:
    """A horizontal colour bar for the heatmap scale (left = no error, right = HEATMAP_MAX or more)."""
    ramp = np.tile(np.linspace(0.0, HEATMAP_MAX, width), (height, 1))
    return heatmap(ramp)


def message_png(text: str, width: int = 640, height: int = 80) -> bytes:
    """A small PNG holding one line of text: what a PNG download gives when the chart cannot be drawn."""
    from PIL import ImageDraw

    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((12, height // 2 - 6), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
