"""The issue-#10 targets: met/missed on hand-made tables, the shared-faces rule, and README's section."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from denoising import catalogue
from denoising.evaluation import SWEEP_PER_IMAGE_COLUMNS, SWEEP_PER_IMAGE_DTYPES
from denoising.noise import PRESETS, NoiseSpec
from denoising.targets import (
    COMMAND,
    RANGE_MODEL,
    README_MARKERS,
    compare_point,
    load_target_tables,
    point_table,
    readme_section,
    replace_section,
    salt_pepper_verdict,
    specialist_results,
    strength_text,
    sweep_results,
    tally,
    targets_markdown,
)

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "checkpoints" / "tables"
SP = catalogue.PRESET_PARAMS["post"]["salt_pepper"]["amount"]


def _rows(scores: dict[str, dict[str, tuple[float, float]]], kind: str = "gaussian", strength: float = 0.1,
          test_set: str = "celeba_test") -> pd.DataFrame:
    """Per-image rows from ``{method: {image_id: (psnr, mae)}}``."""
    spec = NoiseSpec(kind, {**PRESETS["post"][kind].params, catalogue.STRENGTHS[kind].parameter: strength})
    records = [{"test_set": test_set, "image_id": image_id, "noise": kind, "strength": strength,
                "noise_params": spec.to_json(),
                "noise_seed": 0, "method": method, "mae": mae, "psnr": psnr, "ssim": 0.5}
               for method, faces in scores.items() for image_id, (psnr, mae) in faces.items()]
    return pd.DataFrame.from_records(records, columns=SWEEP_PER_IMAGE_COLUMNS).astype(SWEEP_PER_IMAGE_DTYPES)


def _summary(psnr: dict[tuple[str, str], float], test_set: str = "celeba_test") -> pd.DataFrame:
    """A summary table from ``{(kind, method): mean PSNR}``."""
    return pd.DataFrame([{"test_set": test_set, "noise": kind, "method": method, "psnr_mean": value, "mae_mean": 0.1}
                         for (kind, method), value in psnr.items()])


FOUR = ("a", "b", "c", "d")


def _same(psnr: float, mae: float, ids=FOUR) -> dict[str, tuple[float, float]]:
    return {i: (psnr, mae) for i in ids}


def test_met_when_learned_leads_every_classical_method_and_the_noisy_input():
    rows = _rows({"noisy": _same(20.0, 0.10), "mean": _same(24.0, 0.06), "median": _same(25.0, 0.05),
                  "unet_l1": _same(26.5, 0.04), "autoencoder": _same(22.0, 0.07)})
    result = compare_point(rows, "celeba_test", "gaussian", 0.1)
    assert result.learned == "unet_l1" and result.n == 4
    assert result.met and result.strongest.method == "median"
    assert result.margin_db == pytest.approx(1.5)
    row = point_table([result]).splitlines()[-1]
    assert row.endswith("| met, +1.50 dB |") and "(n = 4)" in row and "learned on these" not in row


def test_missed_on_mae_alone_says_so():
    rows = _rows({"noisy": _same(20.0, 0.10), "median": _same(25.0, 0.05), "unet_l1": _same(25.2, 0.06)})
    result = compare_point(rows, "celeba_test", "gaussian", 0.1)
    assert not result.met
    assert point_table([result]).splitlines()[-1].endswith("| **missed** on MAE, +0.20 dB |")


def test_worse_than_the_noisy_input_misses_but_being_level_with_it_does_not():
    level = compare_point(_rows({"noisy": _same(30.0, 0.02), "median": _same(25.0, 0.05),
                                 "unet_l1": _same(30.0, 0.02)}), "celeba_test", "gaussian", 0.1)
    assert level.met and level.margin_db == 0.0
    worse = compare_point(_rows({"noisy": _same(30.0, 0.02), "median": _same(25.0, 0.05),
                                 "unet_l1": _same(29.0, 0.03)}), "celeba_test", "gaussian", 0.1)
    assert not worse.met
    assert point_table([worse]).splitlines()[-1].endswith("| **missed**, −1.00 dB; worse than the noisy input |")


def test_a_classical_method_scored_on_two_faces_is_compared_on_those_two():
    # over all four faces the U-Net (mean 28 dB) beats BM3D's 27 dB, but on BM3D's two faces it trails by 2 dB
    unet = {"a": (25.0, 0.06), "b": (25.0, 0.06), "c": (31.0, 0.02), "d": (31.0, 0.02)}
    rows = _rows({"noisy": _same(20.0, 0.10), "bm3d": _same(27.0, 0.04, ids=("a", "b")), "unet_l1": unet})
    result = compare_point(rows, "celeba_test", "gaussian", 0.1)
    assert result.learned_psnr == pytest.approx(28.0) and result.n == 4
    bm3d = result.rival("bm3d")
    assert bm3d.n == 2 and bm3d.learned_psnr == pytest.approx(25.0) and bm3d.learned_mae == pytest.approx(0.06)
    assert bm3d.psnr_margin == pytest.approx(-2.0) and not result.met
    row = point_table([result]).splitlines()[-1]
    assert "27.00 / 0.0400 (n = 2; learned on these: 25.00 / 0.0600)" in row and "−2.00 dB" in row


@pytest.mark.parametrize(("unet_psnr", "best"), [(39.0, "pix2pix"), (41.0, "unet_l1")])
def test_best_learned_is_the_highest_mean_psnr_and_inf_is_capped(unet_psnr, best):
    # an identical output (inf dB) on one face counts as 100 dB, as in the summaries: pix2pix's mean is 40 dB
    rows = _rows({"noisy": _same(20.0, 0.1), "median": _same(21.0, 0.09),
                  "pix2pix": {"a": (math.inf, 0.0), "b": (20.0, 0.05), "c": (20.0, 0.05), "d": (20.0, 0.05)},
                  "unet_l1": _same(unet_psnr, 0.01)})
    result = compare_point(rows, "celeba_test", "gaussian", 0.1)
    assert result.learned == best and result.learned_psnr == pytest.approx(max(40.0, unet_psnr))


def test_no_learned_or_no_classical_rows_are_not_measured():
    no_learned = compare_point(_rows({"noisy": _same(20.0, 0.1), "median": _same(21.0, 0.09)}), "lfw", "gaussian", 0.1)
    assert no_learned.unmeasured == "not measured (no learned rows)" and not no_learned.met
    assert point_table([no_learned]).splitlines()[-1].endswith("| not measured (no learned rows) |")
    no_classical = compare_point(_rows({"noisy": _same(20.0, 0.1), "unet_l1": _same(21.0, 0.09)}), "lfw", "gaussian", 0.1)
    assert no_classical.unmeasured == "not measured (no classical rows)"
    assert tally([no_learned, no_classical], "presets", "lfw") == "not measured (no learned rows)"


def test_sweep_results_order_strengths_mild_to_strong_and_pick_presets():
    rows = pd.concat([_rows({"noisy": _same(20.0, 0.1), "median": _same(22.0, 0.08), "unet_l1": _same(23.0, 0.07)},
                            kind="poisson", strength=s) for s in (4.0, 256.0, 1024.0)], ignore_index=True)
    assert [r.strength for r in sweep_results(rows, "celeba_test")] == [1024.0, 256.0, 4.0]
    assert [r.strength for r in sweep_results(rows, "celeba_test", presets_only=True)] == [256.0]
    assert sweep_results(rows, "lfw") == []
    assert tally(sweep_results(rows, "celeba_test"), "strengths", "celeba_test") == "met at all 3 strengths"


def test_strengths_are_written_as_the_dashboard_writes_them():
    assert strength_text("gaussian", math.sqrt(0.1)) == "σ 0.316"
    assert strength_text("poisson", 256.0) == "peak 256"
    assert strength_text("salt_pepper", 0.004) == "amount 0.004"
    assert strength_text("speckle", 1.0) == "σ 1"


def test_range_model_within_the_tolerance_of_the_best_specialist():
    summary = _summary({("gaussian", "autoencoder"): 21.6, ("gaussian", "unet_l1"): 22.0, ("gaussian", "pix2pix"): 21.1,
                        ("gaussian", RANGE_MODEL): 21.75, ("speckle", "unet_l1"): 21.0, ("speckle", RANGE_MODEL): 20.65,
                        ("poisson", "unet_l1"): 32.0})
    gaussian, poisson, speckle = specialist_results(summary, "celeba_test")
    assert gaussian.specialist == "unet_l1" and gaussian.margin_db == pytest.approx(-0.25) and gaussian.met
    assert speckle.margin_db == pytest.approx(-0.35) and not speckle.met
    assert poisson.unmeasured == f"not measured (no {RANGE_MODEL} rows)" and not poisson.met
    assert tally([gaussian, poisson, speckle], "presets", "celeba_test") == "**missed** at 1 of 2 presets (met at 1); 1 not measured"


def test_tables_without_the_range_model_or_a_test_set_do_not_crash():
    per_image = _rows({"noisy": _same(29.3, 0.002), "median": _same(26.4, 0.026), "switching_median": _same(46.9, 0.0003),
                       "unet_l1": _same(29.3, 0.002)}, kind="salt_pepper", strength=SP)
    summary = _summary({("salt_pepper", "unet_l1"): 29.3, ("salt_pepper", "noisy"): 29.3})
    text = targets_markdown(summary, per_image)
    assert f"| not measured (no {RANGE_MODEL} rows) |" in text
    assert f"(`{RANGE_MODEL}`) rows in these tables yet" in text
    assert "| **missed**, −17.60 dB, MAE 0.00200 against 0.000300 |" in text
    assert text.count("| not measured (no lfw rows) |") == 2  # no LFW rows at all: both parts of target 4


def test_salt_pepper_target_needs_its_reference():
    result = compare_point(_rows({"noisy": _same(29.3, 0.002), "median": _same(26.4, 0.026),
                                  "unet_l1": _same(40.0, 0.001)}, kind="salt_pepper", strength=SP),
                           "celeba_test", "salt_pepper", SP)
    assert result.met  # beats every classical method present ...
    assert salt_pepper_verdict(result) == "not measured (no switching_median rows)"  # ... but target 3 needs its rival


def test_replace_section_keeps_the_markers_and_refuses_without_them():
    start, end = README_MARKERS
    text = f"# title\n\n{start}\nold\n{end}\n\nafter\n"
    new = replace_section(text, "new table\n")
    assert new == f"# title\n\n{start}\nnew table\n{end}\n\nafter\n"
    assert replace_section(new, "new table\n") == new and readme_section(new) == "new table\n"
    with pytest.raises(ValueError, match="README needs the lines <!-- targets:start --> and <!-- targets:end -->"):
        replace_section("# no markers\n", "x")


def test_cli_writes_readme_from_a_tables_folder(tmp_path, capsys):
    from scripts.targets import main

    per_image = _rows({"noisy": _same(20.0, 0.1), "median": _same(22.0, 0.08), "unet_l1": _same(23.0, 0.07)})
    per_image.to_parquet(tmp_path / "sweep_per_image.parquet")
    _summary({("gaussian", "unet_l1"): 23.0}).to_csv(tmp_path / "summary.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_MARKERS[0]}\n{README_MARKERS[1]}\n", encoding="utf-8")
    assert main(["--tables", str(tmp_path), "--write-readme", str(readme)]) == 0
    tables = load_target_tables(tmp_path)
    assert readme_section(readme.read_text(encoding="utf-8")) == targets_markdown(tables.summary, tables.per_image)
    assert main(["--tables", str(tmp_path / "missing")]) == 2
    assert "error: no summary.csv or sweep_per_image.parquet in" in capsys.readouterr().err


def test_readme_targets_equal_the_command_output_from_the_shipped_tables():
    if not (TABLES / "sweep_per_image.parquet").is_file():
        pytest.skip("no sweep tables shipped (scripts/sweep.py ... --out checkpoints/tables --force)")
    tables = load_target_tables(TABLES)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_section(readme) == targets_markdown(tables.summary, tables.per_image), \
        f"README's targets differ from the shipped tables: run `{COMMAND}`"


def test_cli_help_documents_every_flag():
    from scripts.targets import build_parser

    for action in build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
