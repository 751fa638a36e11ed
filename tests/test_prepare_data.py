"""scripts/prepare_data.py: help text, one-line errors, progress + summary, cache reuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import prepare_data

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "prepare_data.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 9):
        Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(folder / f"{i:06d}.jpg")
    return folder.parent


def test_help_explains_every_flag():
    result = run("--help")
    assert result.returncode == 0
    for flag in ("sources", "--size", "--out", "--seed", "--workers", "--force", "--limit", "lfw"):
        assert flag in result.stdout


def test_missing_path_is_one_line_error(tmp_path):
    result = run(str(tmp_path / "does-not-exist"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not exist" in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_size_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        prepare_data.main(["lfw", "--size", "0"])
    assert exc.value.code == 2 and "--size" in capsys.readouterr().err


def test_prepares_then_reuses_cache(photos, tmp_path):
    out = tmp_path / "out"
    first = run(str(photos), "--out", str(out), "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert "prepared 8 faces" in first.stdout and "images/s" in first.stdout and str(out) in first.stdout
    assert "decoding" in first.stderr  # the tqdm bar
    assert {p.name for p in out.iterdir()} >= {"images.npy", "faces.csv", "meta.json"}
    second = run(str(photos), "--out", str(out))
    assert second.returncode == 0 and "reused cache" in second.stdout


def test_lfw_word_in_process(tmp_path, capsys):
    assert prepare_data.main(["lfw", "--out", str(tmp_path / "lfw"), "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "prepared 100 faces (train 64, validation 11, test 25)" in out
