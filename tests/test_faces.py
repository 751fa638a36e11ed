"""Faces: loaders (CelebA folder, zip, photo folder, LFW), crop, conversions, splits, cache, bad input."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoising import faces
from denoising.celeba import seeded_split
from denoising.faces import (
    FaceDataError,
    crop_and_resize,
    load_face_photo,
    load_lfw_faces,
    load_prepared,
    prepare_faces,
)

N_FAKE = 12
# official partition of the fake CelebA: 1-8 train, 9-10 validation, 11-12 test, 13-40 train (listed, absent)
FAKE_PARTITION = {i: 1 if i in (9, 10) else 2 if i in (11, 12) else 0 for i in range(1, 41)}


def fake_face(i: int, w: int = 178, h: int = 218) -> np.ndarray:
    """A distinct, smooth colour image per index (smooth so JPEG keeps the colour)."""
    rng = np.random.default_rng(i)
    base = rng.uniform(30, 220, 3)
    ramp = np.linspace(-20, 20, h)[:, None, None]
    return np.clip(base + ramp + np.zeros((h, w, 3)), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, i: int, w: int = 178, h: int = 218) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fake_face(i, w, h)).save(path, quality=95)


def make_fake_celeba(root: Path, n: int = N_FAKE, metadata: bool = True) -> Path:
    """root/img_align_celeba/000001.jpg ... + list_eval_partition.txt + identity_CelebA.txt."""
    for i in range(1, n + 1):
        write_jpeg(root / "img_align_celeba" / f"{i:06d}.jpg", i)
    if metadata:
        (root / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {p}\n" for i, p in FAKE_PARTITION.items()))
        (root / "identity_CelebA.txt").write_text("".join(f"{i:06d}.jpg {100 + (i - 1) // 3}\n" for i in range(1, 41)))
    return root


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def fake_celeba(tmp_path: Path) -> Path:
    return make_fake_celeba(tmp_path / "celeba")


# ----------------------------------------------------------------------------- crop and conversions


@pytest.mark.parametrize("size", [28, 64])
def test_crop_is_centred_square_at_requested_size(size):
    # 178x218 with 20 red rows top and bottom: the centred 178x178 square must contain no red
    arr = np.zeros((218, 178, 3), np.uint8)
    arr[:, :, 2] = 200
    arr[:20, :, :] = (255, 0, 0)
    arr[-20:, :, :] = (255, 0, 0)
    out = crop_and_resize(Image.fromarray(arr), size)
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    assert out[..., 0].max() < 0.02 and abs(out[..., 2].mean() - 200 / 255) < 0.01
    # arrays (uint8 or float) give the same result as images
    np.testing.assert_allclose(crop_and_resize(arr, size), out, atol=1e-6)
    np.testing.assert_allclose(crop_and_resize(arr / 255.0, size), out, atol=1e-6)


def test_photo_modes_converted_to_rgb():
    grey = Image.new("L", (40, 30), 100)
    rgba = Image.new("RGBA", (30, 30), (255, 0, 0, 0))  # fully transparent -> white background
    cmyk = Image.new("CMYK", (30, 30), (0, 255, 255, 0))  # pure red in CMYK
    i16 = Image.fromarray(np.full((30, 30), 32896, np.uint16))  # 16-bit mid grey (128 * 257)
    palette = Image.new("RGB", (30, 30), (0, 0, 255)).convert("P")
    cases = {
        "grey": (encode(grey, "PNG"), (100, 100, 100)),
        "rgba": (encode(rgba, "PNG"), (255, 255, 255)),
        "cmyk": (encode(cmyk, "JPEG", quality=95), (255, 0, 0)),
        "i16": (encode(i16, "PNG"), (128, 128, 128)),
        "palette": (encode(palette, "PNG"), (0, 0, 255)),
        "bilevel": (encode(Image.new("1", (30, 30), 1), "PNG"), (255, 255, 255)),
    }
    assert Image.open(io.BytesIO(cases["i16"][0])).mode.startswith("I")  # really a 16-bit file
    for name, (data, rgb) in cases.items():
        out = load_face_photo(data, 28)
        assert out.shape == (28, 28, 3) and out.dtype == np.float32, name
        np.testing.assert_allclose(out.mean(axis=(0, 1)) * 255, rgb, atol=3, err_msg=name)


def test_exif_orientation_applied():
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[:20] = (255, 0, 0)  # top red, bottom blue
    arr[20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180 degrees: the viewer shows blue on top
    out = load_face_photo(encode(Image.fromarray(arr), "JPEG", exif=exif, quality=95), 28)
    assert out[0, :, 2].mean() > 0.8 and out[-1, :, 0].mean() > 0.8


def test_load_face_photo_paths_and_file_objects(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 1)
    from_path = load_face_photo(tmp_path / "a.jpg", 64)
    from_bytes = load_face_photo((tmp_path / "a.jpg").read_bytes(), 64)
    with open(tmp_path / "a.jpg", "rb") as fh:
        from_file = load_face_photo(fh, 64)
    assert from_path.shape == (64, 64, 3)
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (encode(Image.fromarray(fake_face(1)), "JPEG")[:600], "truncated"),
    ],
)
def test_load_face_photo_bad_bytes(data, message):
    with pytest.raises(FaceDataError, match=message):
        load_face_photo(data, 28)


def test_load_face_photo_missing_and_bomb(tmp_path, monkeypatch):
    with pytest.raises(FaceDataError, match="does not exist"):
        load_face_photo(tmp_path / "nope.jpg", 28)
    monkeypatch.setattr(faces, "MAX_PIXELS", 1000)
    with pytest.raises(FaceDataError, match="decompression bomb"):
        load_face_photo(encode(Image.new("RGB", (100, 100)), "PNG"), 28)


def test_bad_size_rejected():
    with pytest.raises(FaceDataError, match="size"):
        crop_and_resize(np.zeros((10, 10, 3)), 0)


# ----------------------------------------------------------------------------- CelebA, folders, zips


def test_celeba_folder_official_split_and_identity(fake_celeba, tmp_path):
    fs = prepare_faces([fake_celeba], 28, cache_dir=tmp_path / "cache", workers=1)
    assert fs.images.shape == (N_FAKE, 28, 28, 3) and fs.images.dtype == np.float32
    assert fs.images.min() >= 0.0 and fs.images.max() <= 1.0
    t = fs.table
    assert list(t.columns) == ["image_id", "split", "identity", "source"]
    assert list(t.image_id) == [f"{i:06d}.jpg" for i in range(1, N_FAKE + 1)]
    expected = {0: "train", 1: "validation", 2: "test"}
    assert list(t.split) == [expected[FAKE_PARTITION[i]] for i in range(1, N_FAKE + 1)]
    assert list(t.identity) == [100 + (i - 1) // 3 for i in range(1, N_FAKE + 1)]
    assert str(t.identity.dtype) == "Int64" and set(t.source) == {"celeba"}
    assert fs.split_counts() == {"train": 8, "validation": 2, "test": 2}
    test = fs.subset("test")
    assert list(test.table.image_id) == ["000011.jpg", "000012.jpg"]
    np.testing.assert_array_equal(test.images, fs.images[-2:])
    # pointing at img_align_celeba/ itself finds the metadata one level up
    direct = prepare_faces([fake_celeba / "img_align_celeba"], 28, cache_dir=tmp_path / "c2", workers=1)
    assert direct.table.equals(t)


def test_zip_matches_folder(fake_celeba, tmp_path):
    zroot = tmp_path / "zipped"
    zroot.mkdir()
    with zipfile.ZipFile(zroot / "img_align_celeba.zip", "w") as zf:
        for f in sorted((fake_celeba / "img_align_celeba").iterdir()):
            zf.write(f, f"img_align_celeba/{f.name}")
        zf.writestr("__MACOSX/img_align_celeba/._000001.jpg", b"resource fork, not an image")
    for name in ("list_eval_partition.txt", "identity_CelebA.txt"):
        (zroot / name).write_bytes((fake_celeba / name).read_bytes())
    folder = prepare_faces([fake_celeba], 28, cache_dir=tmp_path / "a", workers=1)
    for src in (zroot / "img_align_celeba.zip", zroot):  # the zip itself, or the folder holding it
        zipped = prepare_faces([src], 28, cache_dir=tmp_path / "b", workers=1, force=True)
        assert zipped.table.equals(folder.table)
        np.testing.assert_array_equal(zipped.images, folder.images)


def test_seeded_split_deterministic_and_disjoint(tmp_path):
    photos = tmp_path / "photos"
    for i in range(40):
        write_jpeg(photos / f"person{i % 4}" / f"{i:03d}.png", i, 50, 60)
    a = prepare_faces([photos], 28, cache_dir=tmp_path / "a", seed=3, workers=1)
    b = prepare_faces([photos], 28, cache_dir=tmp_path / "b", seed=3, workers=1)
    c = prepare_faces([photos], 28, cache_dir=tmp_path / "c", seed=4, workers=1)
    assert a.table.equals(b.table) and not a.table.split.equals(c.table.split)
    assert a.table.image_id.is_unique and set(a.table.source) == {"folder"}
    assert a.table.image_id.iloc[0] == "person0/000.png"  # ids are paths relative to the folder
    assert a.split_counts() == {"train": 26, "validation": 4, "test": 10}  # 25% test, 15% of the rest
    # identities known -> whole people go to one split
    ids = [f"{i:03d}.jpg" for i in range(60)]
    split = seeded_split(ids, 0, {k: i // 5 for i, k in enumerate(ids)})
    per_person = {}
    for i, k in enumerate(ids):
        per_person.setdefault(i // 5, set()).add(split[k])
    assert all(len(s) == 1 for s in per_person.values())
    assert set(split.values()) == {"train", "validation", "test"}


def test_two_sources_dedup_first_wins_and_metadata_shared(fake_celeba, tmp_path):
    half = tmp_path / "half" / "img_align_celeba"
    for i in range(10, 16):  # 10-12 overlap with the first source
        write_jpeg(half / f"{i:06d}.jpg", 1000 + i, 89, 109)
    fs = prepare_faces([fake_celeba, tmp_path / "half"], 28, cache_dir=tmp_path / "c", workers=1)
    t = fs.table.set_index("image_id")
    assert len(fs) == 15 and fs.meta["duplicates_ignored"] == 3
    # the overlapping file comes from the first source (its colour), the partition applies to both
    row = list(t.index).index("000011.jpg")
    np.testing.assert_allclose(fs.images[row].mean(axis=(0, 1)) * 255, fake_face(11).mean(axis=(0, 1)), atol=3)
    assert t.loc["000011.jpg", "split"] == "test" and t.loc["000014.jpg", "split"] == "train"
    assert t.loc["000015.jpg", "identity"] == 104
    assert [s["images_used"] for s in fs.meta["sources"]] == [12, 3]


def test_cache_reused_and_invalidated(fake_celeba, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = prepare_faces([fake_celeba], 28, cache_dir=cache, workers=1)
    assert first.meta["reused"] is False and (cache / "images.npy").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache matches")

    with monkeypatch.context() as m:
        m.setattr(faces, "_decode_all", no_decoding)
        again = prepare_faces([fake_celeba], 28, cache_dir=cache, workers=1)
    assert again.meta["reused"] is True
    assert again.table.equals(first.table)
    np.testing.assert_array_equal(again.images, first.images)
    # a changed file or option or --force decodes again
    photo = fake_celeba / "img_align_celeba" / "000001.jpg"
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))
    assert prepare_faces([fake_celeba], 28, cache_dir=cache, workers=1).meta["reused"] is False
    assert prepare_faces([fake_celeba], 28, cache_dir=cache, workers=1, force=True).meta["reused"] is False
    assert prepare_faces([fake_celeba], 28, cache_dir=cache, workers=1, seed=1).meta["reused"] is False


def test_default_cache_dir_is_per_options(fake_celeba):
    a = faces.default_cache_dir([fake_celeba], 28)
    assert a.parent == faces.DEFAULT_CACHE_DIR and a.name.startswith("celeba-28px-")
    assert faces.default_cache_dir([fake_celeba], 64) != a
    assert faces.default_cache_dir([fake_celeba], 28, seed=1) != a


def test_uint8_float_round_trip_exact(fake_celeba, tmp_path):
    fs = prepare_faces([fake_celeba], 64, cache_dir=tmp_path / "c", workers=1)
    raw = np.load(tmp_path / "c" / "images.npy")
    assert raw.dtype == np.uint8 and raw.shape == (N_FAKE, 64, 64, 3)
    np.testing.assert_array_equal(np.rint(fs.images * 255).astype(np.uint8), raw)
    loaded = load_prepared(tmp_path / "c")
    np.testing.assert_array_equal(loaded.images, raw.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(loaded.images, fs.images)


def test_pool_matches_single_process(fake_celeba, tmp_path):
    serial = prepare_faces([fake_celeba], 28, cache_dir=tmp_path / "a", workers=1)
    calls = []
    parallel = faces._decode_all(
        [faces.ImageRef(r, str(fake_celeba / "img_align_celeba"), r, False, 0, 0) for r in serial.table.image_id] * 6,
        28, 2, lambda done, total: calls.append((done, total)),
    )
    images, failures = parallel
    assert not failures and calls[-1] == (6 * N_FAKE, 6 * N_FAKE)
    np.testing.assert_array_equal(images[:N_FAKE].astype(np.float32) / np.float32(255), serial.images)


def test_corrupt_and_truncated_files_skipped_and_counted(fake_celeba, tmp_path, caplog):
    folder = fake_celeba / "img_align_celeba"
    (folder / "000013.jpg").write_bytes(b"not a jpeg")
    good = (folder / "000001.jpg").read_bytes()
    (folder / "000014.jpg").write_bytes(good[: len(good) // 2])  # truncated
    with caplog.at_level("WARNING", logger="denoising.faces"):
        fs = prepare_faces([fake_celeba], 28, cache_dir=tmp_path / "c", workers=1)
    assert len(fs) == N_FAKE and "000013.jpg" not in set(fs.table.image_id)
    assert [s["image_id"] for s in fs.meta["skipped"]] == ["000013.jpg", "000014.jpg"]
    assert "skipped 2 unreadable files: 000013.jpg, 000014.jpg" in caplog.text


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(FaceDataError, match="does not exist"):
        prepare_faces([tmp_path / "missing"], cache_dir=tmp_path / "c")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    with pytest.raises(FaceDataError, match="contains no images"):
        prepare_faces([tmp_path / "empty"], cache_dir=tmp_path / "c")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "not celeba")
    with pytest.raises(FaceDataError, match="no images.*img_align_celeba.zip"):
        prepare_faces([tmp_path / "other.zip"], cache_dir=tmp_path / "c")
    (tmp_path / "broken.zip").write_bytes(b"PK but not really")
    with pytest.raises(FaceDataError, match="not a readable zip"):
        prepare_faces([tmp_path / "broken.zip"], cache_dir=tmp_path / "c")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(FaceDataError, match="none of the 1 image files could be read"):
        prepare_faces([only_bad], cache_dir=tmp_path / "c")
    with pytest.raises(FaceDataError, match="no prepared faces"):
        load_prepared(tmp_path / "nothing")


def test_lfw_faces():
    fs = load_lfw_faces(28)
    assert fs.images.shape == (100, 28, 28, 3) and fs.images.dtype == np.float32
    assert fs.images.min() >= 0.0 and fs.images.max() <= 1.0 and fs.images.std() > 0.1
    # grey replicated to RGB
    np.testing.assert_array_equal(fs.images[..., 0], fs.images[..., 2])
    assert list(fs.table.image_id[:2]) == ["lfw_000", "lfw_001"] and set(fs.table.split) == {"test"}
    assert set(fs.table.source) == {"lfw"} and fs.table.identity.isna().all()
    assert load_lfw_faces(64).images.shape == (100, 64, 64, 3)


def test_shared_celeba_official_counts(shared_data, tmp_path):
    fs = prepare_faces([shared_data / "celeba"], 28, cache_dir=tmp_path / "c")
    assert fs.images.shape == (6000, 28, 28, 3)
    assert fs.split_counts() == {"train": 4560, "validation": 780, "test": 660}
    assert fs.meta["skipped"] == [] and fs.table.identity.notna().all()
    people = fs.table.groupby("identity")["split"].nunique()
    assert (people == 1).all()  # the official split is identity-disjoint
