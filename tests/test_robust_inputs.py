"""Bad inputs read from disk or uploaded (issue 12): each one is a plain error, never a traceback or a hang.

Checkpoint cards (validated before a model is built), messy photo folders and zips for prepare_data,
upload headers (bit depth, frames) and the README table (``evaluate.py --markdown-only``).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoising.models import checkpoint as ckpt
from denoising.models.checkpoint import CheckpointError, build_model, load, save, validate_card
from denoising.models.unet import UNet

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- A. checkpoint cards


@pytest.fixture
def saved(tmp_path):
    save(UNet(base=8, depth=2), tmp_path, "unet_l1", "gaussian")
    return tmp_path / "unet_l1-gaussian"


def _edit_card(stem: Path, **changes) -> None:
    """Change fields of a card (``model_kwargs__base=...`` edits a constructor argument); the hash still matches."""
    card = json.loads(stem.with_suffix(".json").read_text())
    for key, value in changes.items():
        if key.startswith("model_kwargs__"):
            card["model_kwargs"][key.removeprefix("model_kwargs__")] = value
        else:
            card[key] = value
    stem.with_suffix(".json").write_text(json.dumps(card))


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if any model (even a shapes-only one) is built."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built from a card that should have been refused")

    monkeypatch.setitem(ckpt.MODEL_CLASSES, "unet", refuse)


@pytest.mark.parametrize(("changes", "field"), [
    ({"model_kwargs__base": 10**12}, r"model_kwargs\.base' must be a whole number from 1 to 512, got 1000000000000"),
    ({"model_kwargs__depth": 10**6}, r"model_kwargs\.depth' must be a whole number from 1 to 8"),
    ({"model_kwargs__base": -5}, r"model_kwargs\.base' must be a whole number from 1 to 512, got -5"),
    ({"model_kwargs__base": 8.0}, r"model_kwargs\.base' must be a whole number"),
    ({"model_kwargs__channels": True}, r"model_kwargs\.channels' must be a whole number"),
    ({"model_kwargs__gated": "yes"}, r"model_kwargs\.gated' must be true or false"),
    ({"model_kwargs__gate_threshold": 1.5}, r"model_kwargs\.gate_threshold' must be null or a number strictly"),
    ({"model_kwargs__evil": 1}, r"'model_kwargs' has keys a unet does not take: \['evil'\]"),
    ({"model_kwargs": "base=8"}, r"field 'model_kwargs' must be a JSON object, got str"),
    ({"model_class": "Sequential"}, r"field 'model_class' must be one of"),
    ({"weights_dtype": "int8"}, r"field 'weights_dtype' must be one of"),
    ({"arch": 7}, r"field 'arch' must be a non-empty string"),
    ({"history": "none"}, r"field 'history' has the wrong type"),
])
def test_bad_card_is_refused_before_any_model_is_built(saved, no_build, changes, field):
    _edit_card(saved, **changes)
    with pytest.raises(CheckpointError, match=r"unet_l1-gaussian\.json.*" + field):
        load(saved)


def test_card_is_compared_with_the_weights_before_a_model_is_built(saved, no_build):
    _edit_card(saved, weights_sha256="0" * 64)
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        load(saved)


def test_card_that_does_not_describe_its_weights_is_refused_before_the_real_build(saved, monkeypatch):
    built = []
    real = ckpt.MODEL_CLASSES["unet"]
    monkeypatch.setitem(ckpt.MODEL_CLASSES, "unet", lambda **kw: built.append(kw) or real(**kw))
    _edit_card(saved, model_kwargs__base=512, model_kwargs__depth=8)  # in bounds, but not these weights
    import torch

    with pytest.raises(CheckpointError, match="do not match the architecture"):
        load(saved)
    assert len(built) == 1 and torch.get_default_device().type == "cpu"  # only the shapes-only (meta) build


@pytest.mark.parametrize(("changes", "field"), [({"model_kwargs__base": 10**12}, "model_kwargs.base"),
                                             ({"model_kwargs__depth": 10**6}, "model_kwargs.depth"),
                                             ({"model_kwargs": "base=8"}, "'model_kwargs' must be a JSON object")])
def test_evaluate_refuses_a_bad_card_in_one_line_without_building(saved, no_build, tmp_path, capsys, changes,
                                                                   field):
    from dashboard_fixtures import evaluate_unet_l1

    _edit_card(saved, **changes)
    code = evaluate_unet_l1(tmp_path, saved.parent)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unet_l1-gaussian.json" in err[0] and field in err[0], err
    assert not (tmp_path / "tables" / "summary.csv").exists()


def test_build_model_checks_its_arguments():
    with pytest.raises(CheckpointError, match=r"model_kwargs\.base' must be a whole number from 1 to 512"):
        build_model("unet", {"base": 10**12})
    with pytest.raises(CheckpointError, match="'model_kwargs' must be a JSON object"):
        build_model("unet", "base")
    assert build_model("unet", {"base": 8, "depth": 2}).base == 8


def test_format_version_as_a_string_says_so(saved):
    _edit_card(saved, format_version="1")
    with pytest.raises(CheckpointError, match=r"has format_version '1' \(a string\), this code reads the number 1"):
        load(saved)
    _edit_card(saved, format_version=2)
    with pytest.raises(CheckpointError, match=r"has format_version 2, this code reads 1"):
        load(saved)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not valid JSON"), (b"\xff\xfe\x00garbage", "not valid JSON"), (b"[1, 2]", "does not hold a JSON object"),
])
def test_unreadable_card_files(saved, content, message):
    saved.with_suffix(".json").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        ckpt.read_json(saved.with_suffix(".json"))
    with pytest.raises(CheckpointError, match=message):
        load(saved)


@pytest.mark.parametrize(("changes", "field"), [
    ({"stopped": ["max_epochs"]}, "field 'stopped' has the wrong type"),
    ({"weights_bytes": "12"}, "field 'weights_bytes' has the wrong type"),
    ({"best_val_psnr": "30 dB"}, "field 'best_val_psnr' has the wrong type"),
    ({"val_noisy_input": {"mae": "0.1"}}, r"field 'val_noisy_input\.mae' has the wrong type"),
    ({"data": {"image_size": 28}}, r"field 'data\.image_size' must be a list"),
    ({"gate_threshold": {"chosen": "0.7"}}, r"field 'gate_threshold\.chosen' must be a number or null"),
])
def test_optional_card_fields_the_training_page_reads_are_type_checked(saved, changes, field):
    _edit_card(saved, **changes)
    card = json.loads(saved.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError, match=r"unet_l1-gaussian\.json: " + field):
        validate_card(card, saved.with_suffix(".json"))


def test_every_shipped_card_is_valid():
    for card in sorted((REPO / "checkpoints").glob("*.json")):
        validate_card(json.loads(card.read_text()), card)


def test_training_page_warns_once_per_bad_card_and_shows_the_good_one(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from dashboard_fixtures import make_checkpoint, make_tables
    from streamlit.testing.v1 import AppTest

    folder = make_checkpoint(tmp_path / "ckpt")
    good = folder / "autoencoder-gaussian"
    bad = {"autoencoder-poisson": b"", "autoencoder-speckle": b"\xff\xfe\xfa", "autoencoder-salt_pepper": b"[1]",
           "unet_l1-gaussian": None}
    for stem, content in bad.items():
        (folder / f"{stem}.safetensors").write_bytes(good.with_suffix(".safetensors").read_bytes())
        if content is None:  # a wrong-typed field
            card = json.loads(good.with_suffix(".json").read_text())
            card["model_kwargs"] = "filters=32"
            content = json.dumps(card).encode()
        (folder / f"{stem}.json").write_bytes(content)
    monkeypatch.setenv("DENOISING_TABLES_DIR", str(make_tables(tmp_path / "tables", {"lfw": ["lfw_000", "lfw_001"]})))
    monkeypatch.setenv("DENOISING_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("DENOISING_DASHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DENOISING_CELEBA_DIR", raising=False)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/training.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if "card is unusable" in w.value]
    assert len(warnings) == len(bad)
    assert all(str(folder) not in w for w in warnings)  # file names, not server paths
    assert any("autoencoder-salt_pepper.json does not hold a JSON object" in w for w in warnings)
    assert any("unet_l1-gaussian.json: field 'model_kwargs' must be a JSON object" in w for w in warnings)
    assert len(at.selectbox(key="tr_model").options) == 1


# ---------------------------------------------------------------- B. messy photo folders and zips


def _jpeg(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def messy(tmp_path) -> Path:
    """Three good photos beside a link to nothing, a FIFO and a name that is not UTF-8, all named like photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"good{i}.jpg").write_bytes(_jpeg(i))
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "linked.jpg").symlink_to(folder / "good0.jpg")  # a link to a photo is a photo
    os.mkfifo(folder / "fifo.jpg")
    with open(os.path.join(os.fsencode(folder), b"bad\xff.jpg"), "wb") as f:
        f.write(_jpeg(9))
    return folder


def test_prepare_skips_links_to_nothing_fifos_and_non_utf8_names(messy, tmp_path, capsys):
    from scripts import prepare_data

    code = prepare_data.main([str(messy), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "prepared 4 faces" in out and "skipped 3 unreadable" in out
    meta = json.loads((tmp_path / "out" / "meta.json").read_text(encoding="utf-8"))
    reasons = " | ".join(s["reason"] for s in meta["skipped"])
    assert "dangling.jpg: it is a link to a file that does not exist" in reasons
    assert "fifo.jpg: it is not a regular file" in reasons
    assert "bad\ufffd.jpg: its file name is not valid UTF-8" in reasons


def test_oversized_zip_member_is_skipped_from_its_header_without_being_read(tmp_path, monkeypatch):
    from denoising import celeba, faces

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("small.jpg", _jpeg(0))
        zf.writestr("huge.jpg", bytes(celeba.MAX_MEMBER_BYTES + 1))  # compresses to a few kilobytes
    reads = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: reads.append(str(name)) or
                        real_open(self, name, *a, **k))
    face_set = faces.prepare_faces([archive], cache_dir=tmp_path / "out", workers=1)
    assert list(face_set.table["image_id"]) == ["small.jpg"] and "huge.jpg" not in reads
    assert face_set.meta["skipped"] == [{"image_id": "huge.jpg", "reason": (
        f"huge.jpg: {celeba.MAX_MEMBER_BYTES + 1:,} bytes once unzipped, more than the "
        f"{celeba.MAX_MEMBER_BYTES:,} a face photo may have")}]
    assert celeba.MAX_MEMBER_BYTES == 20_000_000


def test_a_zip_member_that_grew_past_the_limit_is_never_read_whole(tmp_path, monkeypatch):
    from denoising import faces
    from denoising.celeba import ImageRef

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.jpg", bytes(2_000))
    monkeypatch.setattr(faces, "MAX_MEMBER_BYTES", 1_000)
    faces._ZIPS.pop(str(archive), None)
    with pytest.raises(faces.FaceDataError, match="big.jpg is more than 1,000 bytes once unzipped"):
        faces._decode_ref(ImageRef("big.jpg", str(archive), "big.jpg", True, 2_000, 0), 28)


def test_empty_source_name_is_refused_not_the_current_folder(tmp_path, monkeypatch, capsys):
    from scripts import prepare_data

    monkeypatch.chdir(tmp_path)
    (tmp_path / "face.jpg").write_bytes(_jpeg())
    assert prepare_data.main(["", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: an empty source name was given: name a CelebA folder, a zip of photos or 'lfw' "
                   "(write '.' for the current folder)"]
    assert not (tmp_path / "out").exists()


def test_a_folder_of_only_unusable_entries_says_what_was_skipped(tmp_path):
    from denoising.celeba import FaceDataError, discover_source

    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    with pytest.raises(FaceDataError, match="contains no images .*skipped 1 .*link to a file that does not exist"):
        discover_source(tmp_path)


# ---------------------------------------------------------------- C. uploads: bit depth and frames from the header


def png_header(width: int, height: int, bits: int = 8, colour: int = 2) -> bytes:
    """A PNG declaring ``width``×``height`` pixels of ``bits`` per channel (colour type 2 = RGB, 0 = grey,
    6 = RGBA), holding no pixel data at all (as tests/test_upload_size.py's ``png_header_only``)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)) \
        + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour", [0, 2, 6])
def test_16_bit_9400_square_png_is_refused_from_its_header(colour):
    from denoising.faces import FaceDataError, load_photo

    with pytest.raises(FaceDataError, match=r"9400×9400 pixels \(88 megapixels\).*shrink it"):
        load_photo(png_header(9400, 9400, 16, colour))


@pytest.mark.parametrize(("colour", "what"), [(0, "16 bits per channel"), (2, "16 bits per channel"),
                                              (6, "16 bits per channel")])
def test_deep_pictures_have_a_smaller_pixel_limit(colour, what):
    from denoising.faces import PHOTO_MAX_COSTLY_PIXELS, PHOTO_MAX_PIXELS, FaceDataError, load_photo

    assert PHOTO_MAX_COSTLY_PIXELS < 4000 * 4000 < PHOTO_MAX_PIXELS
    with pytest.raises(FaceDataError, match=f"4000×4000 pixels \\(16 megapixels\\) with {what}; such pictures are "
                                            "opened up to 12 megapixels"):
        load_photo(png_header(4000, 4000, 16, colour))


def test_transparent_pictures_have_the_smaller_limit_and_8_bit_rgb_the_larger():
    from denoising.faces import FaceDataError, load_photo

    with pytest.raises(FaceDataError, match="with transparency; such pictures are opened up to 12 megapixels"):
        load_photo(png_header(4000, 4000, 8, 6))
    # an 8-bit RGB header of the same size passes the header checks; only its (absent) pixels fail
    with pytest.raises(FaceDataError, match="damaged or cut short"):
        load_photo(png_header(4000, 4000, 8, 2))


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_several_frames_are_refused(fmt):
    from denoising.faces import FaceDataError, load_photo

    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(FaceDataError, match=r"holds several frames \(an animation or a multi-page file\)"):
        load_photo(buffer.getvalue())
    single = io.BytesIO()
    frames[0].save(single, fmt)
    assert load_photo(single.getvalue()).size == (32, 32)


def test_load_photo_states_its_worst_case_memory():
    from denoising.faces import load_photo

    assert "Worst-case memory per call" in load_photo.__doc__ and "600 MB" in load_photo.__doc__


# ---------------------------------------------------------------- D. evaluate.py --markdown-only on bad tables


@pytest.fixture
def tables(tmp_path) -> Path:
    """A copy of the shipped result tables."""
    folder = tmp_path / "tables"
    folder.mkdir()
    for name in ("meta.json", "per_image.csv", "summary.csv", "timings.csv"):
        (folder / name).write_bytes((REPO / "checkpoints" / "tables" / name).read_bytes())
    return folder


def _markdown_only(folder: Path, capsys) -> tuple[int, str, list[str]]:
    from scripts import evaluate

    code = evaluate.main(["--markdown-only", "--tables", str(folder)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def _edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))


def test_markdown_only_reads_the_shipped_tables(tables, capsys):
    code, out, err = _markdown_only(tables, capsys)
    assert code == 0 and "| method |" in out and "nan" not in out and err == []


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": 10**23}, "seed is '100000000000000000000000', not a whole number"),
    ({"methods": [1]}, "methods must be a list of objects"),
])
def test_markdown_only_bad_meta_is_one_line_and_status_2(tables, capsys, change, message):
    _edit_meta(tables, **change)
    code, out, err = _markdown_only(tables, capsys)
    assert code == 2 and out == "" and len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_markdown_only_truncated_summary_is_refused_not_shown_with_nan(tables, capsys):
    summary = tables / "summary.csv"
    data = summary.read_bytes()
    summary.write_bytes(data[: len(data) // 2])
    code, out, err = _markdown_only(tables, capsys)
    assert code == 2 and out == "" and len(err) == 1 and err[0].startswith("error: summary.csv")


def test_markdown_only_blank_means_are_refused_not_shown_as_nan(tables, capsys):
    summary = tables / "summary.csv"
    lines = summary.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    row = lines[1].rstrip("\n").split(",")
    row[header.index("psnr_mean")] = ""
    summary.write_text("".join([lines[0], ",".join(row) + "\n", *lines[2:]]))
    code, out, err = _markdown_only(tables, capsys)
    assert code == 2 and out == "" and "nan" not in " ".join(err)
    assert err == [f"error: summary.csv in {tables} has no psnr_mean for {row[2]} on {row[1]} ({row[0]}): the "
                   "table is incomplete or damaged"]


def test_markdown_only_an_unforeseen_error_is_still_one_line(tables, capsys, monkeypatch):
    from denoising import runs

    def broken(folder):
        raise KeyError("mae_mean")

    monkeypatch.setattr(runs, "load_tables", broken)
    code, out, err = _markdown_only(tables, capsys)
    assert code == 2 and err == [f"error: cannot make the results table from {tables}: KeyError: 'mae_mean'"]
