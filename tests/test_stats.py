"""Summary statistics of the per-image table: bootstrap intervals, summaries, paired comparisons."""

import numpy as np
import pandas as pd
import pytest

from denoising.stats import PSNR_CAP, SUMMARY_COLUMNS, bootstrap_mean_ci, paired_comparison, summarize


def _table(rows):
    """Per-image rows from (test_set, image_id, noise, method, mae, psnr, ssim) tuples."""
    return pd.DataFrame(rows, columns=["test_set", "image_id", "noise", "method", "mae", "psnr", "ssim"])


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.normal(0.05, 0.01, 25)
    large = rng.normal(0.05, 0.01, 2500)
    lo_s, hi_s = bootstrap_mean_ci(small, rng=0)
    lo_l, hi_l = bootstrap_mean_ci(large, rng=0)
    assert lo_s < small.mean() < hi_s
    assert lo_l < large.mean() < hi_l
    # width ~ 1/sqrt(n): 100x the faces -> about a tenth of the width
    assert 0.05 < (hi_l - lo_l) / (hi_s - lo_s) < 0.2
    # and close to the normal-theory interval for a large sample
    normal = 2 * 1.96 * large.std(ddof=1) / np.sqrt(len(large))
    assert (hi_l - lo_l) == pytest.approx(normal, rel=0.15)


def test_bootstrap_is_seeded():
    x = np.random.default_rng(2).uniform(size=50)
    assert bootstrap_mean_ci(x, rng=7) == bootstrap_mean_ci(x, rng=7)
    assert bootstrap_mean_ci(x, rng=7) != bootstrap_mean_ci(x, rng=8)


def test_bootstrap_rejects_empty_sample():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean_ci([])


def test_summarize_statistics_and_schema():
    maes = [0.1, 0.2, 0.3, 0.6]
    rows = [("s", f"i{k}", "gaussian", "median", m, 20.0 + k, 0.5) for k, m in enumerate(maes)]
    rows += [("s", "i0", "gaussian", "noisy", 0.0, np.inf, 1.0), ("s", "i1", "gaussian", "noisy", 0.2, 30.0, 0.9)]
    summary = summarize(_table(rows), n_boot=500, seed=0)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["method"]) == ["median", "noisy"]  # order of first appearance
    med = summary.iloc[0]
    assert med["n_images"] == 4
    assert med["mae_mean"] == pytest.approx(0.3)
    assert med["mae_median"] == pytest.approx(0.25)
    assert med["mae_std"] == pytest.approx(np.std(maes, ddof=1))
    assert med["mae_ci_low"] <= med["mae_mean"] <= med["mae_ci_high"]
    assert med["ssim_ci_low"] == med["ssim_ci_high"] == pytest.approx(0.5)  # constant sample, zero-width CI
    noisy = summary.iloc[1]
    # an identical image's infinite PSNR is capped, not dropped: mean of (100, 30)
    assert noisy["psnr_mean"] == pytest.approx((PSNR_CAP + 30.0) / 2)
    assert np.isfinite(summary[[c for c in SUMMARY_COLUMNS if c.startswith("psnr_")]].to_numpy(float)).all()


def test_summarize_groups_do_not_depend_on_other_groups():
    rng = np.random.default_rng(3)
    rows = [("s", f"i{k}", noise, method, *rng.uniform(size=3))
            for noise in ("gaussian", "speckle") for method in ("a", "b") for k in range(30)]
    table = _table(rows)
    full = summarize(table, n_boot=300, seed=5).set_index(["noise", "method"])
    alone = summarize(table[(table["noise"] == "speckle") & (table["method"] == "b")], n_boot=300, seed=5)
    pd.testing.assert_series_equal(full.loc[("speckle", "b")].drop("test_set"),
                                   alone.set_index(["noise", "method"]).iloc[0].drop("test_set"),
                                   check_names=False)
    other_seed = summarize(table, n_boot=300, seed=6).set_index(["noise", "method"])
    assert full.loc[("speckle", "b"), "mae_ci_low"] != other_seed.loc[("speckle", "b"), "mae_ci_low"]


def test_summarize_single_face_group():
    summary = summarize(_table([("s", "i0", "gaussian", "noisy", 0.1, 20.0, 0.5)]), n_boot=100)
    row = summary.iloc[0]
    assert row["n_images"] == 1 and np.isnan(row["mae_std"])
    assert row["mae_ci_low"] == row["mae_ci_high"] == pytest.approx(0.1)


def test_summarize_rejects_missing_columns():
    with pytest.raises(ValueError, match="psnr"):
        summarize(pd.DataFrame({"test_set": ["s"], "noise": ["g"], "method": ["m"], "mae": [0.1], "ssim": [0.5]}))


def _paired_table():
    # a beats b on 3 of 4 faces by MAE; one tie on PSNR; b has an extra face a lacks (e.g. a subset)
    a = {"i0": (0.10, 20.0), "i1": (0.20, 21.0), "i2": (0.30, 22.0), "i3": (0.50, 23.0)}
    b = {"i0": (0.15, 19.0), "i1": (0.25, 21.0), "i2": (0.40, 20.0), "i3": (0.45, 24.0), "i4": (0.90, 5.0)}
    rows = [("s", i, "poisson", "a", m, p, 0.5) for i, (m, p) in a.items()]
    rows += [("s", i, "poisson", "b", m, p, 0.5) for i, (m, p) in b.items()]
    rows += [("s", i, "gaussian", "a", 0.9, 1.0, 0.1) for i in a]  # another noise kind: must be ignored
    return _table(rows)


def test_paired_comparison_win_rate_and_difference():
    table = _paired_table()
    res = paired_comparison(table, "a", "b", "mae", "poisson", "s", n_boot=1000, seed=0)
    assert res["n"] == 4  # only faces both were scored on
    assert res["win_rate"] == pytest.approx(0.75)  # lower MAE is better
    assert res["mean_diff"] == pytest.approx(np.mean([-0.05, -0.05, -0.10, 0.05]))
    assert res["ci_low"] <= res["mean_diff"] <= res["ci_high"]
    psnr = paired_comparison(table, "a", "b", "psnr", "poisson", "s")
    assert psnr["win_rate"] == pytest.approx(0.5)  # higher PSNR is better: i0, i2 (i1 is a tie)
    assert psnr["ties"] == pytest.approx(0.25)
    reverse = paired_comparison(table, "b", "a", "mae", "poisson", "s", n_boot=1000, seed=0)
    assert reverse["win_rate"] == pytest.approx(0.25)
    assert reverse["mean_diff"] == pytest.approx(-res["mean_diff"])
    assert paired_comparison(table, "a", "b", "mae", "poisson", "s", seed=0) == \
        paired_comparison(table, "a", "b", "mae", "poisson", "s", seed=0)
    with_diff = paired_comparison(table, "a", "b", "mae", "poisson", "s", n_boot=1000, seed=0, with_differences=True)
    assert with_diff["diff"] == pytest.approx([-0.05, -0.05, -0.10, 0.05])  # i0..i3, image-id order
    assert {k: v for k, v in with_diff.items() if k != "diff"} == res


def test_paired_comparison_without_common_faces_and_bad_metric():
    table = _paired_table()
    res = paired_comparison(table, "a", "b", "mae", "speckle", "s")
    assert res["n"] == 0 and np.isnan(res["win_rate"]) and np.isnan(res["mean_diff"])
    with pytest.raises(ValueError, match="unknown metric"):
        paired_comparison(table, "a", "b", "lpips", "poisson", "s")


def test_family_column_from_the_methods_then_the_catalogue():
    from denoising.stats import UNKNOWN_FAMILY

    rows = [("s", "i0", "gaussian", method, 0.1, 20.0, 0.5) for method in ("noisy", "bm3d", "unet_l1", "mystery")]
    summary = summarize(_table(rows), n_boot=50)
    assert list(summary.columns[:5]) == ["test_set", "noise", "method", "family", "n_images"]
    assert list(summary["family"]) == ["baseline", "classical", "learned", UNKNOWN_FAMILY]
    told = summarize(_table(rows), n_boot=50, families={"mystery": "classical", "noisy": "learned"})
    assert list(told["family"]) == ["learned", "classical", "learned", "classical"]


def test_summarize_sweep_is_summarize_per_strength_with_the_same_seeds():
    from denoising.stats import SWEEP_SUMMARY_COLUMNS, summarize_sweep

    rng = np.random.default_rng(4)
    frames = []
    for strength in (0.3, 0.1):  # kept in this order: as swept, not sorted
        rows = [("s", f"i{k}", "gaussian", method, *rng.uniform(size=3)) for method in ("median", "noisy")
                for k in range(20)]
        frames.append(_table(rows).assign(strength=strength))
    table = pd.concat(frames, ignore_index=True)
    swept = summarize_sweep(table, n_boot=300, seed=2)
    assert list(swept.columns) == SWEEP_SUMMARY_COLUMNS
    assert list(zip(swept["strength"], swept["method"], strict=True)) == [(0.3, "median"), (0.3, "noisy"), (0.1, "median"),
                                                             (0.1, "noisy")]
    for strength in (0.3, 0.1):
        alone = summarize(table[table["strength"] == strength], n_boot=300, seed=2)
        got = swept[swept["strength"] == strength].drop(columns="strength").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone[got.columns])
    # the same resampled faces at every strength (the seed names no strength): equal samples, equal intervals
    same = pd.concat([frames[0], frames[0].assign(strength=0.1)], ignore_index=True)
    both = summarize_sweep(same, n_boot=300, seed=2)
    assert both.iloc[0]["mae_ci_low"] == both.iloc[2]["mae_ci_low"]
    with pytest.raises(ValueError, match="strength"):
        summarize_sweep(frames[0].drop(columns="strength"))
    assert summarize_sweep(table.iloc[:0]).columns.tolist() == SWEEP_SUMMARY_COLUMNS
