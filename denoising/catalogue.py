"""The one catalogue of names: noise kinds, strength presets, methods, metrics and test sets.

Everything a person reads (display names, labels, one-sentence descriptions) and every name that
keys a table lives here once. The library, the scripts and the dashboard import it; none keeps a
copy. Plain Python only (no numpy, no torch), so importing it is instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# ----------------------------------------------------------------------------- noise kinds

NOISE_KINDS = ("gaussian", "poisson", "salt_pepper", "speckle")

#: Short human names, e.g. in ``NoiseSpec.label`` ("Gaussian, σ = 0.316").
NOISE_NAMES = {
    "gaussian": "Gaussian",
    "poisson": "Poisson",
    "salt_pepper": "Salt & pepper",
    "speckle": "Speckle",
}

#: Labels with a hint of what the noise looks like, for charts and menus.
NOISE_LABELS = {
    "gaussian": "Gaussian (grain)",
    "poisson": "Poisson (low light)",
    "salt_pepper": "Salt & pepper (specks)",
    "speckle": "Speckle (multiplicative)",
}

#: One sentence per noise kind, for people who do not read code.
NOISE_DESCRIPTIONS = {
    "gaussian": "Random grain of the same strength added everywhere, like a cheap camera sensor.",
    "poisson": "Grain from counting too few particles of light, stronger in bright areas, as in dim photos.",
    "salt_pepper": "A few isolated dots turned fully white or black, like dust or dead pixels.",
    "speckle": "Grain that multiplies the brightness, so bright areas get much noisier, as in radar or ultrasound.",
}


@dataclass(frozen=True)
class Strength:
    """The one parameter that sets how strong a kind of noise is, and how a slider offers it.

    ``values`` is either ``(low, high, step)`` for a continuous slider or a list of allowed values.
    """

    parameter: str
    label: str
    values: tuple | list
    help: str


STRENGTHS = {
    "gaussian": Strength("sigma", "Grain strength (σ)", (0.0, 0.6, 0.01),
                         "Standard deviation of the random grain added to every value; the post used 0.316."),
    "poisson": Strength("peak", "Light level (peak photon count)", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                        "Fewer photons = darker scene = stronger noise; the post's setting is 256."),
    "salt_pepper": Strength("amount", "Share of specks", (0.0, 0.2, 0.002),
                            "Share of colour values turned fully white or black; the post used 0.004."),
    "speckle": Strength("sigma", "Speckle strength (σ)", (0.0, 1.5, 0.05),
                        "Noise proportional to brightness: value × (1 + σ·random); the post used 1.0."),
}


def _preset(gaussian_sigma: float, amount: float) -> dict[str, dict]:
    return {
        "gaussian": {"sigma": gaussian_sigma},
        "poisson": {"peak": 256.0},
        "salt_pepper": {"amount": amount, "salt_fraction": 0.5, "per": "value"},
        "speckle": {"sigma": 1.0},
    }


#: Named noise settings as plain parameters (``denoising.noise.PRESETS`` turns them into NoiseSpecs):
#: "post" (the blog post's code: Gaussian variance 0.1, 0.4 % of values hit) and "notebook" (its
#: notebook's milder variant: Gaussian variance 0.01, 3 % of values hit).
PRESET_PARAMS: dict[str, dict[str, dict]] = {
    "post": _preset(math.sqrt(0.1), 0.004),
    "notebook": _preset(0.1, 0.03),
}
DEFAULT_PRESET = "post"

#: The strength sweep: each kind's own parameter (σ, peak, amount, σ) from mild to beyond the post's.
#: The other parameters of a kind (salt_fraction, per) stay at the default preset's values.
SWEEP_STRENGTHS = {
    "gaussian": (0.02, 0.05, 0.1, 0.2, math.sqrt(0.1), 0.45),
    "poisson": (1024.0, 256.0, 64.0, 16.0, 8.0, 4.0),
    "salt_pepper": (0.001, 0.004, 0.01, 0.03, 0.1, 0.2),
    "speckle": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5),
}
#: Words for the two ends of each kind's strength axis ("mild" end first).
STRENGTH_ENDS = ("mild", "strong")


def format_strength(value: float) -> str:
    """A strength for people: whole numbers as they are, others to three significant digits."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.3g}"


def strength_symbol(kind: str) -> str:
    """The kind's strength parameter as a reader sees it: σ, peak or amount."""
    parameter = STRENGTHS[kind].parameter
    return "σ" if parameter == "sigma" else parameter


def strength_text(kind: str, value: float) -> str:
    """E.g. ``"σ 0.316"``, ``"peak 256"``."""
    return f"{strength_symbol(kind)} {format_strength(value)}"


def runs_downwards(kind: str) -> bool:
    """Whether a larger value is milder noise (Poisson's peak: more light), as the sweep is ordered."""
    sweep = SWEEP_STRENGTHS.get(kind, ())
    return len(sweep) > 1 and sweep[-1] < sweep[0]


def mild_to_strong(kind: str, values) -> list[float]:
    """The distinct strengths in ``values``, mildest first."""
    return sorted({float(v) for v in values}, reverse=runs_downwards(kind))

# ----------------------------------------------------------------------------- methods

FAMILIES = ("baseline", "classical", "learned")


@dataclass(frozen=True)
class MethodInfo:
    """What a person is told about one denoising method."""

    name: str
    display_name: str
    family: str
    description: str
    slow: bool = False
    #: Told the kind and strength of the noise (a reference for one kind), not blind.
    told_noise: bool = False


def _methods(*infos: MethodInfo) -> dict[str, MethodInfo]:
    return {info.name: info for info in infos}


#: Every method, in display order: baseline, fast classical (blind filters, then references told the noise),
#: slow classical (BM3D, then BM3D-based references told the noise), learned.
METHODS = _methods(
    MethodInfo("noisy", "Noisy input (no filter)", "baseline",
               "The noisy photo as it is, with nothing removed: the score every method should beat."),
    MethodInfo("mean", "Mean filter (3×3)", "classical",
               "Replaces every pixel by the average of its 3×3 neighbourhood, blurring the grain away "
               "together with fine detail (the post's first filter)."),
    MethodInfo("median", "Median filter (3×3)", "classical",
               "Replaces every pixel by the middle value of its 3×3 neighbourhood, which removes isolated "
               "specks while keeping edges (the post's second filter)."),
    MethodInfo("gaussian", "Gaussian blur", "classical",
               "Averages nearby pixels with weights that fade with distance: a soft, even blur."),
    MethodInfo("bilateral", "Bilateral filter", "classical",
               "A blur that only averages neighbours of similar colour, so edges such as eyes and lips "
               "stay sharper."),
    MethodInfo("tv", "Total variation", "classical",
               "Finds the flattest picture close to the noisy one: clean flat areas with sharp edges, "
               "sometimes a slightly cartoon-like look."),
    MethodInfo("wavelet", "Wavelet shrinkage", "classical",
               "Splits the picture into coarse and fine detail and turns down the fine detail that looks "
               "like noise."),
    MethodInfo("nl_means", "Non-local means", "classical",
               "Averages each small patch with similar-looking patches elsewhere in the photo, so "
               "repeated structure helps clean itself."),
    MethodInfo("switching_median", "Switching median (told the noise)", "classical",
               "Told that the noise is salt & pepper and how much of it there is: finds the specks (values "
               "turned fully white or black where their neighbours are not) and replaces only those by the "
               "middle value of their undamaged neighbours; every other pixel stays exactly as it was.",
               told_noise=True),
    MethodInfo("bm3d", "BM3D", "classical",
               "Stacks similar patches together and cleans each stack jointly; one of the strongest classical "
               "methods, but slow (about a second per face).", slow=True),
    MethodInfo("bm3d_sigma", "BM3D told σ (Gaussian)", "classical",
               "BM3D told that the noise is Gaussian grain and its exact strength σ, allowing for the grain "
               "being cut off at pure black and white; for Gaussian noise only, slow.", slow=True, told_noise=True),
    MethodInfo("bm3d_anscombe", "BM3D + Anscombe (Poisson)", "classical",
               "Told that the noise is Poisson and the light level: evens out the grain (the Anscombe transform), "
               "cleans with BM3D and converts back without bias; for Poisson noise only, slow.",
               slow=True, told_noise=True),
    MethodInfo("bm3d_speckle", "BM3D told σ (speckle)", "classical",
               "BM3D told that the noise is speckle and its strength σ, which sets how much grain to expect at "
               "each brightness, allowing for values cut off at pure black and white; for speckle only, slow.",
               slow=True, told_noise=True),
    MethodInfo("autoencoder", "Autoencoder (post)", "learned",
               "The blog post's small neural network that squeezes each face through 100 numbers and rebuilds it."),
    MethodInfo("pix2pix", "pix2pix GAN", "learned",
               "A U-Net trained together with a second network that judges realism (pix2pix), as in the post's "
               "bonus."),
    MethodInfo("unet_l1", "U-Net, L1 only (no GAN)", "learned",
               "The same U-Net as pix2pix trained only to match the clean face, to show what the GAN part adds."),
    MethodInfo("unet_range", "U-Net, any strength (told the strength)", "learned",
               "A U-Net trained on noise of every strength from mild to beyond the post's, told how strong the "
               "noise is; it repairs only the values the noise changed and leaves the rest alone, at any image "
               "size.", told_noise=True),
)
#: The blog post's own methods, whose claims the findings check: its two filters and its two networks.
POST_METHODS = ("mean", "median", "autoencoder", "pix2pix")

#: Learned recipes (one checkpoint per recipe and noise kind) and the network class each one ships.
ARCHS = tuple(name for name, info in METHODS.items() if info.family == "learned")
ARCH_MODEL = {"autoencoder": "autoencoder", "pix2pix": "unet", "unet_l1": "unet", "unet_range": "unet"}
#: What each recipe's training loss is, in words ({l1_weight}: the card's config, 100 in pix2pix).
TRAINING_LOSSES = {
    "autoencoder": "mean squared error between output and clean face (MSE), as in the post",
    "pix2pix": "adversarial (least-squares GAN: how unlike a real face the judge finds the output) + {l1_weight:g} × L1 "
               "(mean absolute error to the clean face)",
    "unet_l1": "L1: mean absolute error between output and clean face",
    "unet_range": "minus the PSNR of the output plus minus the PSNR of its correction alone (so it is negative and "
                  "falls as the network learns)",
}
#: The same, short enough for a chart title.
TRAINING_LOSSES_SHORT = {"autoencoder": "MSE", "pix2pix": "adversarial + {l1_weight:g} × L1", "unet_l1": "L1",
                         "unet_range": "−PSNR of output and correction"}
#: Network classes (a card's ``model_class``) for people.
MODEL_CLASS_NAMES = {"unet": "U-Net", "autoencoder": "Convolutional autoencoder", "patchgan": "PatchGAN"}
#: Recipes trained over the sweep's whole strength range rather than at one preset.
RANGE_ARCHS = ("unet_range",)
#: Learning-rate schedules of training (``TrainConfig.schedule``; the first is the default) and the
#: validation scores that may pick a run's kept epoch (``TrainConfig.select_on``).
SCHEDULES = ("cosine", "plateau")
SELECT_ON = ("val_psnr", "val_mae")

# ----------------------------------------------------------------------------- metrics

METRICS = ("mae", "psnr", "ssim")
HIGHER_IS_BETTER = {"mae": False, "psnr": True, "ssim": True}
METRIC_SHORT = {"mae": "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM"}
METRIC_LABELS = {
    "mae": "Average error (MAE, lower is better)",
    "psnr": "Signal-to-noise (PSNR in dB, higher is better)",
    "ssim": "Structural similarity (SSIM, higher is better)",
}


def format_score(metric: str, value: float) -> str:
    """A mean score as every table, caption and sentence shows it: the one place its precision is decided.

    MAE keeps three significant digits (at least four decimals), so close small errors stay apart
    (the noisy input's 0.00199 against a network's 0.00201, not both "0.0020"); PSNR two decimals
    (dB); SSIM four. Two scores that read the same are a tie at the shown precision.
    """
    value = float(value)
    if not math.isfinite(value):
        return "—" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if metric == "psnr":
        return f"{value:.2f}"
    if metric == "mae" and value != 0:
        return f"{value:.{max(4, 2 - math.floor(math.log10(abs(value))))}f}"
    return f"{value:.4f}"


#: The same precision in a sortable number column (printf style): MAE to a millionth, so 0.000026 is not 0.0000.
SCORE_COLUMN_FORMAT = {"mae": "%.6f", "psnr": "%.2f", "ssim": "%.4f"}


# ----------------------------------------------------------------------------- test sets

#: Test-set name (the ``test_set`` column of the tables) -> title for people.
TEST_SET_TITLES = {"celeba_test": "CelebA test split", "lfw": "LFW (scikit-image's 100 built-in faces)"}


def test_set_title(name: str) -> str:
    """Title of a test set; an unknown name is shown as it is."""
    return TEST_SET_TITLES.get(name, name)


def noise_label(kind: str) -> str:
    """Label of a noise kind; an unknown kind is shown as it is."""
    return NOISE_LABELS.get(kind, kind)


def display_name(method: str) -> str:
    """Display name of a method; an unknown name is shown as it is."""
    info = METHODS.get(method)
    return info.display_name if info else method


def and_list(items: list[str]) -> str:
    """Items as a sentence lists them: "A", "A and B", "A, B and C" (in the order given)."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plural(n: int, word: str) -> str:
    """A count with its noun: "1 vote", "3 votes", "1 browser session"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


__all__ = ["NOISE_KINDS", "NOISE_NAMES", "NOISE_LABELS", "NOISE_DESCRIPTIONS", "Strength", "STRENGTHS",
           "PRESET_PARAMS", "DEFAULT_PRESET", "SWEEP_STRENGTHS", "STRENGTH_ENDS", "format_strength",
           "strength_symbol", "strength_text", "runs_downwards", "mild_to_strong", "FAMILIES", "MethodInfo", "METHODS", "ARCHS", "ARCH_MODEL", "RANGE_ARCHS",
           "SCHEDULES", "SELECT_ON", "TRAINING_LOSSES", "TRAINING_LOSSES_SHORT", "MODEL_CLASS_NAMES",
           "METRICS", "HIGHER_IS_BETTER", "METRIC_SHORT", "METRIC_LABELS", "format_score", "SCORE_COLUMN_FORMAT", "TEST_SET_TITLES", "test_set_title",
           "noise_label", "display_name", "and_list", "plural", "POST_METHODS"]
