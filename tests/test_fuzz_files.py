"""Seeded fuzz corpora (issue #12): uploaded pictures and checkpoint weight files.

Every upload in the corpus -- whole pictures of every mode and format Pillow writes, the same cut
short at seeded places, bytes flipped, headers claiming huge sizes, random bytes, animations, EXIF
junk -- goes through the Noise lab's upload path (:func:`dashboard.common.upload_to_face`, which
calls :func:`denoising.faces.load_photo`) and yields either a usable picture or one plain line (no
exception, no library or exception names). A few go through the page itself (AppTest).

Every weights file in the second corpus -- cut short, flipped, a header that is not JSON or claims
more than the file holds, wrong tensor names, shapes or dtypes, a card pointing at weights that are
not there -- is refused by :func:`denoising.models.checkpoint.load` with one line naming the file,
before its tensors are read (no allocation beyond the header).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dashboard.common import upload_to_face
from denoising.models import checkpoint as ckpt
from denoising.models.checkpoint import CheckpointError, load, save
from denoising.models.unet import UNet

SEED = 20261204
#: Words a visitor must never read: library, module and exception names.
TECHNICAL = ("Pillow", "PIL", "OSError", "Error", "Exception", "Traceback", "struct", "zlib", "errno", "safetensors")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _pictures(rng: np.random.Generator) -> dict[str, bytes]:
    """Whole, valid pictures: every common format and mode, animations, 16-bit, EXIF orientations."""
    rgb = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    grey16 = Image.fromarray((rng.integers(0, 65536, (40, 56))).astype(np.uint16))
    out = {f"rgb.{fmt.lower()}": _encode(rgb, fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")}
    out |= {
        "grey.png": _encode(rgb.convert("L"), "PNG"), "bilevel.png": _encode(rgb.convert("1"), "PNG"),
        "palette.png": _encode(rgb.convert("P"), "PNG"), "rgba.png": _encode(rgb.convert("RGBA"), "PNG"),
        "la.png": _encode(rgb.convert("LA"), "PNG"), "grey16.png": _encode(grey16, "PNG"),
        "grey16.tiff": _encode(grey16, "TIFF"), "cmyk.jpeg": _encode(rgb.convert("CMYK"), "JPEG"),
        "cmyk.tiff": _encode(rgb.convert("CMYK"), "TIFF"), "float.tiff": _encode(grey16.convert("F"), "TIFF"),
        "ycbcr.jpeg": _encode(rgb, "JPEG", subsampling=2, quality=20), "progressive.jpeg": _encode(rgb, "JPEG",
                                                                                                   progressive=True),
        "tiny.png": _encode(rgb.resize((2, 2)), "PNG"), "thin.png": _encode(rgb.resize((4000, 16)), "PNG"),
    }
    frames = [rgb, rgb.rotate(90, expand=False)]
    out |= {f"animated.{fmt.lower()}": _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
            for fmt in ("GIF", "PNG", "WEBP", "TIFF")}
    for orientation in (0, 3, 6, 8, 9, 255, 65535):  # 0, 9 and up are not orientations at all
        exif = Image.Exif()
        exif[0x0112] = orientation
        out[f"exif{orientation}.jpeg"] = _encode(rgb, "JPEG", exif=exif.tobytes())
    junk = b"Exif\x00\x00" + bytes(rng.integers(0, 256, 200, dtype=np.uint8))
    out["exif_junk.jpeg"] = _encode(rgb, "JPEG", exif=junk)
    out["exif_junk.png"] = _encode(rgb, "PNG", exif=junk)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_headers() -> dict[str, bytes]:
    """Headers that claim sizes far beyond the limits (or 0), with little or no pixel data behind them."""
    png = b"\x89PNG\r\n\x1a\n"
    idat = _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")
    out = {f"png_{w}x{h}_{depth}bit": png + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)) + idat
           for w, h, depth, color in ((100_000, 100_000, 8, 2), (2**31 - 1, 1, 8, 2), (9_400, 9_400, 16, 6),
                                      (0, 0, 8, 2), (20, 20, 7, 2), (20, 20, 8, 9))}
    out["gif_65535x65535"] = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b",\x00\x00\x00\x00" \
        + struct.pack("<HH", 65535, 65535) + b"\x00\x02\x02D\x01\x00;"
    out["bmp_huge"] = b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 60_000, 60_000, 1,
                                                                             24, 0, 0, 0, 0, 0, 0)
    out["bmp_negative"] = b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, -5, -2**31, 1,
                                                                                 24, 0, 0, 0, 0, 0, 0)
    return out


def upload_corpus() -> dict[str, bytes]:
    """The seeded upload corpus: whole pictures, each cut short and flipped at seeded places, headers, noise."""
    rng = np.random.default_rng(SEED)
    whole = _pictures(rng)
    corpus = dict(whole)
    for name, data in whole.items():
        for cut in sorted({8, 33, len(data) // 2, len(data) - 1, int(rng.integers(1, len(data)))}):
            corpus[f"{name}[:{cut}]"] = data[:cut]
        flipped = bytearray(data)
        for at in rng.integers(0, len(data), 6):
            flipped[at] ^= int(rng.integers(1, 256))
        corpus[f"{name} flipped"] = bytes(flipped)
    corpus |= _huge_headers()
    corpus["zero bytes"] = b""
    corpus["one byte"] = b"\x89"
    for magic in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x01\x00\x00WEBP", b"II*\x00",
                  b"BM", b"%PDF-1.4", b"<svg"):
        corpus[f"random after {magic[:6]!r}"] = magic + bytes(rng.integers(0, 256, int(rng.integers(1, 5000)),
                                                                               dtype=np.uint8))
    return corpus


CORPUS = upload_corpus()


def test_the_corpus_is_seeded_and_broad():
    assert upload_corpus() == CORPUS and len(CORPUS) > 250


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_upload_is_a_picture_or_one_plain_line(name):
    photo, message = upload_to_face(CORPUS[name])
    if photo is not None:
        assert message is None
        pixels = photo.pixels
        assert pixels.dtype == np.float32 and pixels.ndim == 3 and pixels.shape[2] == 3
        assert max(pixels.shape[:2]) <= 256 and min(pixels.shape[:2]) >= 16
        assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1
    else:
        assert isinstance(message, str) and message.startswith(("That file could not be used:", "The server is busy"))
        assert "\n" not in message and len(message) < 400, message
        assert not any(word in message for word in TECHNICAL), message


def test_whole_pictures_are_used_and_refusals_say_why():
    """The whole pictures of ordinary modes are accepted; animations and tiny ones are refused in words."""
    results = {name: upload_to_face(CORPUS[name]) for name in _pictures(np.random.default_rng(SEED))}
    refused = {name: message for name, (photo, message) in results.items() if photo is None}
    assert set(refused) == {"animated.gif", "animated.png", "animated.webp", "animated.tiff", "tiny.png",
                            "thin.png"}, refused
    assert all("several frames" in refused[f"animated.{fmt}"] for fmt in ("gif", "png", "webp", "tiff"))
    assert "at least 16 pixels" in refused["tiny.png"] and "too narrow" in refused["thin.png"]
    assert results["exif_junk.png"][0].pixels.shape[:2] == (40, 56)  # junk EXIF: the pixels are still used
    assert results["exif6.jpeg"][0].pixels.shape[:2] == (56, 40)  # a quarter turn, upright
    assert results["exif9.jpeg"][0].pixels.shape[:2] == (40, 56)  # not an orientation: left as it is


@pytest.mark.parametrize("name", ["png_100000x100000_8bit", "png_9400x9400_16bit", "rgb.png[:33]",
                                  "random after b'GIF89a'", "zero bytes"])
def test_noise_lab_page_shows_one_plain_error_for_bad_uploads(name, tmp_path, monkeypatch):
    from test_upload_size import upload

    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "no_tables"))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = upload("fuzz.png", CORPUS[name])
    errors = [e.value for e in at.error]
    assert not at.exception and len(errors) == 1, errors
    assert not any(word in errors[0] for word in TECHNICAL), errors


# ---------------------------------------------------------------- checkpoint weight files


@pytest.fixture
def saved(tmp_path) -> Path:
    save(UNet(base=8, depth=2), tmp_path, "unet_l1", "gaussian")
    return tmp_path / "unet_l1-gaussian"


def _header(data: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def _rename_first(data: bytes) -> bytes:
    header, body = _header(data)
    first = next(k for k in header if k != "__metadata__")
    header["evil." + first] = header.pop(first)
    return _with_header(header, body)


def _reshape_first(data: bytes) -> bytes:
    """The first tensor's shape swapped for another of the same number of elements (its bytes still fit)."""
    header, body = _header(data)
    entry = next(v for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 4)
    entry["shape"] = [int(np.prod(entry["shape"])), 1, 1, 1]
    return _with_header(header, body)


def _retype_floats(data: bytes) -> bytes:
    """Every half-float tensor relabelled as 16-bit integers (same bytes, wrong dtype)."""
    header, body = _header(data)
    for key, entry in header.items():
        if key != "__metadata__" and entry["dtype"] == "F16":
            entry["dtype"] = "I16"
    return _with_header(header, body)


def _claim_more(data: bytes) -> bytes:
    """The last tensor claims 10^12 elements: the offsets say more bytes than the file holds."""
    header, body = _header(data)
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    header[last]["shape"] = [10**6, 10**6]
    header[last]["data_offsets"][1] = header[last]["data_offsets"][0] + 2 * 10**12
    return _with_header(header, body)


WEIGHTS = {
    "empty": (lambda d: b"", "truncated or corrupt"),
    "seven bytes": (lambda d: d[:7], "truncated or corrupt"),
    "cut in the header": (lambda d: d[:100], "truncated or corrupt"),
    "cut in the data": (lambda d: d[: len(d) // 2], "truncated or corrupt"),
    "one byte short": (lambda d: d[:-1], "truncated or corrupt"),
    "one byte too many": (lambda d: d + b"\x00", "truncated or corrupt"),
    "header length 2^63": (lambda d: (2**63).to_bytes(8, "little") + d[8:], "header length does not fit"),
    "header length 2^64-1": (lambda d: b"\xff" * 8 + d[8:], "header length does not fit"),
    "header not JSON": (lambda d: (5).to_bytes(8, "little") + b"{x: 1", "not JSON"),
    "header a list": (lambda d: b"\x02" + b"\x00" * 7 + b"[]", "not a JSON object"),
    "header deep": (lambda d: len(b"[" * 5000).to_bytes(8, "little") + b"[" * 5000, "not JSON"),
    "unknown dtype": (lambda d: _with_header({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
                                             b"\x00" * 16), "no known dtype"),
    "negative shape": (lambda d: _with_header({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
                                              b"\x00" * 4), "malformed shape"),
    "overlapping tensors": (lambda d: _with_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                                   b"\x00" * 4), "overlap or leave gaps"),
    "claims 2 TB": (_claim_more, "bytes of tensors, more than"),
    "random bytes": (lambda d: bytes(np.random.default_rng(SEED).integers(0, 256, len(d), dtype=np.uint8)),
                     "truncated or corrupt"),
    "wrong tensor name": (_rename_first, "do not match the architecture"),
    "wrong tensor shape": (_reshape_first, "shape mismatch"),
    "wrong dtype": (_retype_floats, "stored as the wrong type"),
}


@pytest.mark.parametrize("case", list(WEIGHTS))
def test_every_bad_weights_file_is_one_line_naming_it(saved, case, monkeypatch):
    spoil, words = WEIGHTS[case]
    weights = saved.with_suffix(".safetensors")
    weights.write_bytes(spoil(weights.read_bytes()))
    card = json.loads(saved.with_suffix(".json").read_text())  # the card matches the spoiled file: only the
    card["weights_sha256"] = ckpt._sha256(weights)                # weights themselves are wrong
    saved.with_suffix(".json").write_text(json.dumps(card))
    from safetensors import torch as st_torch

    def no_read(*args, **kwargs):
        raise AssertionError("the tensors were read before the header was checked")

    if case not in ("wrong tensor name", "wrong tensor shape", "wrong dtype"):  # those pass the header check
        monkeypatch.setattr(st_torch, "load_file", no_read)
    with pytest.raises(CheckpointError) as caught:
        load(saved)
    message = str(caught.value)
    assert weights.name in message and words in message, message
    assert "\n" not in message and "Traceback" not in message


def test_a_card_whose_weights_are_missing(saved):
    saved.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"missing checkpoint weights .*unet_l1-gaussian\.safetensors"):
        load((saved.parent, "unet_l1", "gaussian"))


def test_the_shipped_weights_pass_the_header_check():
    shipped = sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*.safetensors"))
    for path in shipped:
        ckpt.check_tensor_file(path)


def test_evaluate_reports_a_cut_weights_file_in_one_line(saved, tmp_path, capsys):
    """scripts/evaluate.py with cut-short weights (the card's hash updated to match): exit 2, one line naming them."""
    from dashboard_fixtures import evaluate_unet_l1

    weights = saved.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-10])
    card = json.loads(saved.with_suffix(".json").read_text())
    card["weights_sha256"] = ckpt._sha256(weights)
    saved.with_suffix(".json").write_text(json.dumps(card))
    code = evaluate_unet_l1(tmp_path, saved.parent)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and weights.name in err[0] and "truncated or corrupt" in err[0], err
    assert not (tmp_path / "tables" / "summary.csv").exists()


def test_training_page_skips_a_model_whose_weights_are_cut_short(tmp_path, monkeypatch):
    from dashboard_fixtures import make_checkpoint
    from streamlit.testing.v1 import AppTest

    folder = make_checkpoint(tmp_path / "ckpt")
    good = folder / "autoencoder-gaussian"
    for suffix in (".json", ".safetensors"):
        (folder / f"autoencoder-poisson{suffix}").write_bytes(good.with_suffix(suffix).read_bytes())
    cut = folder / "autoencoder-poisson.safetensors"
    cut.write_bytes(cut.read_bytes()[:-100])
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tmp_path / "no_tables"))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if "unusable" in w.value]
    assert len(warnings) == 1 and "autoencoder-poisson.safetensors is truncated or corrupt" in warnings[0], warnings
    assert str(folder) not in warnings[0]
    assert len(at.selectbox(key="tr_model").options) == 1


def test_findings_warns_once_about_a_broken_model_and_names_only_its_file(tmp_path, monkeypatch):
    """Issue #12: the Findings page repeated a broken model's warning for each of its three example faces."""
    from dashboard_fixtures import make_checkpoint, make_tables
    from streamlit.testing.v1 import AppTest

    folder = make_checkpoint(tmp_path / "ckpt")
    weights = folder / "autoencoder-gaussian.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    card = json.loads(weights.with_suffix(".json").read_text())
    card["weights_sha256"] = ckpt._sha256(weights)
    weights.with_suffix(".json").write_text(json.dumps(card))
    tables = make_tables(tmp_path / "tables", {"lfw": ["lfw_000", "lfw_001", "lfw_002", "lfw_003"]})
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(tables))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "autoencoder-gaussian.safetensors is truncated or corrupt" in warnings[0], warnings
    assert str(tmp_path) not in warnings[0]
