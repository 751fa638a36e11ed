"""A user's photo at its own size: the library loader (denoising.faces.load_photo) and the Noise lab page.

The page tests use the shipped U-Net checkpoints (pix2pix, unet_l1: fully convolutional) and the shipped
autoencoder (built for 28×28 faces only), pointed at through DENOISING_CHECKPOINT_DIR.
"""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from denoising import catalogue
from denoising.faces import PHOTO_MAX_PIXELS, PHOTO_MAX_SIDE, PHOTO_MIN_SIDE, FaceDataError, load_photo

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"
NAMES = {name: info.display_name for name, info in catalogue.METHODS.items()}


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels but holds no pixel data at all."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


# ---------------------------------------------------------------- the library loader


def test_photo_keeps_its_own_size_and_pixels():
    pixels = random_rgb(48, 64)
    photo = load_photo(encode(Image.fromarray(pixels)))
    assert photo.pixels.dtype == np.float32 and photo.pixels.shape == (48, 64, 3)
    assert np.array_equal(np.rint(photo.pixels * 255).astype(np.uint8), pixels)  # no crop, no resampling
    assert photo.original_size == (64, 48) and photo.size == (64, 48) and not photo.shrunk


@pytest.mark.parametrize(("size", "max_side", "expected"), [
    ((1024, 768), PHOTO_MAX_SIDE, (256, 192)),
    ((768, 1024), PHOTO_MAX_SIDE, (192, 256)),
    ((300, 100), PHOTO_MAX_SIDE, (256, 85)),  # 100 × 256/300 = 85.3
    ((257, 257), PHOTO_MAX_SIDE, (256, 256)),
    ((256, 40), PHOTO_MAX_SIDE, (256, 40)),  # exactly the limit: kept
    ((1024, 768), 128, (128, 96)),
])
def test_large_photo_is_shrunk_to_max_side_keeping_its_shape(size, max_side, expected):
    photo = load_photo(encode(Image.new("RGB", size, (10, 200, 30))), max_side)
    assert photo.pixels.shape == (expected[1], expected[0], 3)
    assert photo.original_size == size and photo.shrunk == (size != expected)
    assert np.allclose(photo.pixels, np.array([10, 200, 30], np.float32) / 255, atol=1e-6)


def test_shrinking_is_antialiased():
    """A one-pixel checkerboard shrunk 4× becomes even grey; point sampling would keep pure black and white."""
    board = ((np.indices((768, 1024)).sum(axis=0) % 2) * 255).astype(np.uint8)
    photo = load_photo(encode(Image.fromarray(board)))
    assert photo.pixels.shape == (192, 256, 3)
    assert np.abs(photo.pixels - 0.5).max() <= 1 / 255


def test_big_jpeg_is_decoded_at_reduced_scale_yet_matches_a_full_decode():
    yy, xx = np.mgrid[0:1536, 0:2048]
    smooth = np.stack([xx / 2048, yy / 1536, (xx + yy) / 3584], axis=-1) * 255
    data = encode(Image.fromarray(smooth.astype(np.uint8)), "JPEG", quality=95)
    photo = load_photo(data)
    assert photo.pixels.shape == (192, 256, 3) and photo.original_size == (2048, 1536)
    with Image.open(io.BytesIO(data)) as full:
        reference = np.asarray(full.convert("RGB").resize((256, 192), Image.Resampling.BICUBIC), np.float32) / 255
    assert np.abs(photo.pixels - reference).mean() < 1 / 255


def test_pixel_limit_is_checked_from_the_header_before_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    side = 8000  # 64 megapixels: over our limit, under Pillow's own (89), so our header check must refuse it
    assert side * side > PHOTO_MAX_PIXELS > 7000 * 7000
    with pytest.raises(FaceDataError) as error:
        load_photo(png_header_only(side, side))
    assert str(error.value) == ("the file is 8000×8000 pixels (64 megapixels); photos of at most 50 megapixels are "
                                "opened: shrink it first")


def test_a_decompression_bomb_header_is_refused_with_the_same_plain_words():
    with pytest.raises(FaceDataError, match="declares more than 50 megapixels and is not opened: shrink it first"):
        load_photo(png_header_only(100_000, 100_000))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"this is not a photo", "the file is not a picture that can be read (PNG, JPEG, WebP, GIF, BMP or TIFF)"),
    (encode(Image.fromarray(random_rgb(64, 64)))[:300], "the file is damaged or cut short: its pixels could not "
                                                         "be decoded"),
    (encode(Image.new("RGB", (15, 40))), f"the file is only 15×40 pixels: it needs at least {PHOTO_MIN_SIDE} "
                                         "pixels on each side"),
    (encode(Image.new("RGB", (2000, 20))), "the file is 2000×20 pixels, too narrow: shrunk to 256 pixels on its "
                                           "longer side it would be 256×3, under 16 pixels on its shorter side"),
])
def test_bad_files_give_a_plain_message(data, message):
    with pytest.raises(FaceDataError) as error:
        load_photo(data)
    assert str(error.value) == message


def test_grey_becomes_three_equal_channels():
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (20, 1))  # 64 wide, 20 tall
    photo = load_photo(encode(Image.fromarray(grey, mode="L")))
    assert photo.pixels.shape == (20, 64, 3)
    for channel in range(3):
        assert np.array_equal(np.rint(photo.pixels[..., channel] * 255).astype(np.uint8), grey)


def test_sixteen_bit_grey_is_rescaled_not_clipped_white():
    grey = np.full((20, 30), 32768, dtype=np.uint16)  # mid grey in 16 bits
    image = Image.fromarray(grey)
    assert image.mode == "I;16"
    photo = load_photo(encode(image))
    assert np.allclose(photo.pixels, 32768 / 257 / 255, atol=1 / 255)


def test_alpha_is_dropped_and_transparent_areas_become_white():
    rgba = np.zeros((20, 40, 4), np.uint8)
    rgba[..., :3] = (200, 50, 10)
    rgba[:, :20, 3] = 255  # left half opaque, right half fully transparent
    photo = load_photo(encode(Image.fromarray(rgba, mode="RGBA")))
    assert photo.pixels.shape == (20, 40, 3)
    assert np.allclose(photo.pixels[:, :20], np.array([200, 50, 10], np.float32) / 255)
    assert np.allclose(photo.pixels[:, 20:], 1.0)


def test_exif_orientation_turns_a_phone_photo_upright():
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, 20:] = 255  # stored: left half black, right half white
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the left half ends up on top
    photo = load_photo(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert photo.pixels.shape == (40, 20, 3) and photo.original_size == (20, 40)
    assert photo.pixels[:18].mean() < 0.05 and photo.pixels[22:].mean() > 0.95


def test_a_rotated_photo_is_shrunk_by_its_upright_shape():
    image = Image.new("RGB", (1200, 600), (90, 90, 90))
    exif = image.getexif()
    exif[0x0112] = 8
    photo = load_photo(encode(image, "JPEG", exif=exif.tobytes()))
    assert photo.pixels.shape == (256, 128, 3) and photo.original_size == (600, 1200)


def test_a_path_works_and_a_missing_one_is_a_message(tmp_path):
    path = tmp_path / "me.png"
    path.write_bytes(encode(Image.fromarray(random_rgb(30, 50))))
    assert load_photo(path).pixels.shape == (30, 50, 3)
    with pytest.raises(FaceDataError, match="does not exist or is not a file"):
        load_photo(tmp_path / "nobody.png")


# ---------------------------------------------------------------- the Noise lab page

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(REPO / "dashboard" / "app.py")


@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """No tables and no checkpoints (the Noise lab needs neither); a test may point at the shipped checkpoints."""
    (tmp_path / "no_checkpoints").mkdir()
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "no_tables"))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path / "no_checkpoints"))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    return monkeypatch


def shipped_unets(monkeypatch) -> list[str]:
    """Point the app at the shipped checkpoints; the fully convolutional U-Nets found there for Gaussian noise."""
    unets = [arch for arch in ("pix2pix", "unet_l1") if (SHIPPED / f"{arch}-gaussian.safetensors").is_file()]
    if not unets or not (SHIPPED / "autoencoder-gaussian.safetensors").is_file():
        pytest.skip("the shipped checkpoints are not in this checkout")
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(SHIPPED))
    return unets


def upload(name: str, data: bytes, query: dict | None = None, whole: bool = True) -> AppTest:
    """Upload ``data`` to the Noise lab; ``whole``: untick "cut a square around the face" first (the photo's own size)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/noise_lab.py")
    at.query_params.update({"src": "upload", **(query or {})})
    at.run()
    if whole:
        at.checkbox(key="lab_crop").uncheck().run()
    at.file_uploader(key="lab_upload").set_value((name, data, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def face_row(at: AppTest) -> list[tuple[int, int, np.ndarray]]:
    """Every picture in the face row: (shown width, shown height, decoded PNG pixels)."""
    html = "".join(h.proto.body for h in at.get("html") if "face-row" in h.proto.body)
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', html)
    return [(int(w), int(h), np.asarray(Image.open(io.BytesIO(base64.b64decode(b))))) for b, w, h in found]


def test_upload_is_cleaned_at_its_own_size_by_filters_and_unets(lab_env):
    from denoising.metrics import score
    from denoising.noise import PRESETS

    unets = shipped_unets(lab_env)
    pixels = random_rgb(48, 64, seed=3)
    at = upload("me.png", encode(Image.fromarray(pixels)), {"kind": "gaussian"})
    assert not at.error
    assert [c.value for c in at.caption][0] == "Used at its own size, 64×48 pixels."
    pictures = face_row(at)
    shown = list(at.session_state["lab_last_scores"]["Method"])
    assert len(pictures) == 1 + len(shown)  # the original, then one picture per scored row
    for width, height, decoded in pictures:  # shown 3× so 64 pixels show about as large as a test face
        assert (width, height) == (192, 144) and decoded.shape == (48, 64, 3)  # the browser enlarges the pixels
    assert np.array_equal(pictures[0][2], pixels)  # the original, untouched
    assert {NAMES[u] for u in unets} <= set(shown)
    assert NAMES["autoencoder"] not in shown
    assert (f"Not run on this 64×48 picture: {NAMES['autoencoder']} works only on 28×28 faces."
            in [c.value for c in at.caption])
    # the scores are against the photo at its own size, with exactly the noise of seed 0
    clean = pixels.astype(np.float32)[None] / 255
    noisy = PRESETS[catalogue.DEFAULT_PRESET]["gaussian"].apply(clean, np.random.default_rng(0))
    table = at.session_state["lab_last_scores"].set_index("Method")
    assert table.loc["With noise (no cleaning)", catalogue.METRIC_SHORT["mae"]] == float(score(clean, noisy)["mae"][0])
    assert any(c.value.startswith("me.png (64×48 pixels): ") for c in at.caption)


def test_large_upload_is_shrunk_with_a_note(lab_env):
    at = upload("wide.png", encode(Image.fromarray(random_rgb(200, 300))), {"kind": "salt_pepper"})
    assert not at.error
    assert at.caption[0].value == ("Shrunk from 300×200 to 256×171 pixels, keeping its shape: the lab works on "
                                   "photos up to 256 pixels on the longer side.")
    assert {(w, h) for w, h, _ in face_row(at)} == {(256, 171)}  # shown pixel for pixel


@pytest.mark.parametrize(("data", "words"), [
    (encode(Image.new("RGB", (10, 12))), "That file could not be used: the file is only 10×12 pixels: it needs at "
                                         "least 16 pixels on each side."),
    (png_header_only(8000, 8000), "That file could not be used: the file is 8000×8000 pixels (64 megapixels); "
                                  "photos of at most 50 megapixels are opened: shrink it first."),
    (encode(Image.fromarray(random_rgb(64, 64)))[:300], "That file could not be used: the file is damaged or cut "
                                                         "short: its pixels could not be decoded."),
    (b"GIF89a broken", "That file could not be used: the file is not a picture that can be read (PNG, JPEG, WebP, "
                       "GIF, BMP or TIFF)."),
])
def test_unusable_upload_is_one_plain_message(lab_env, data, words):
    at = upload("bad.png", data)
    assert [e.value for e in at.error] == [words]
    assert not face_row(at)


def test_slow_methods_run_on_the_upload_on_request(lab_env):
    from denoising.registry import classical_methods

    slow = [m.display_name for m in classical_methods().values() if m.slow and m.available("gaussian")]
    at = upload("me.png", encode(Image.fromarray(random_rgb(40, 50))), {"kind": "gaussian"})
    assert not set(slow) & set(at.session_state["lab_last_scores"]["Method"])
    at.button(key="lab_slow").click().run()
    assert not at.exception
    assert list(at.session_state["lab_last_scores"]["Method"])[-len(slow):] == slow
    assert {(w, h, decoded.shape) for w, h, decoded in face_row(at)} == {(50 * 4, 40 * 4, (40, 50, 3))}
    assert any(" The slow methods took " in c.value for c in at.caption)


def test_noise_controls_keep_their_values_while_waiting_for_a_photo(lab_env):
    # regression: the page stopped before drawing the noise controls until a photo came, so the
    # strength slider lost its state and Chromium showed σ 0 while the lab used σ 0.316
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/noise_lab.py")
    at.query_params.update({"src": "upload"})
    at.run()
    slider = at.select_slider(key="lab_strength_gaussian")
    assert slider.value == pytest.approx(0.1 ** 0.5)
    slider.set_value(0.2).run()
    at.file_uploader(key="lab_upload").set_value(("me.png", encode(Image.fromarray(random_rgb(32, 32, seed=1))),
                                                  "image/png")).run()
    assert not at.exception
    assert at.select_slider(key="lab_strength_gaussian").value == 0.2
    assert any(c.value.startswith("me.png (a 32×32 square): Gaussian, σ = 0.2, seed 0") for c in at.caption)
