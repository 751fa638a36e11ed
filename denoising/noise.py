"""The post's four kinds of noise: seeded, parameterised, clipped to [0, 1], whole batches at once.

Every function is stateless and takes ``rng`` (a :class:`numpy.random.Generator`, an int seed or
``None``), normalised with :func:`numpy.random.default_rng`: same seed, same bytes. Inputs are
float images in [0, 1] of any shape (normally a batch ``(N, H, W, 3)``); outputs are float32 of the
same shape, clipped to [0, 1].

Conventions (fixed once here; see ``MISSION.md``)
-------------------------------------------------
Gaussian
    ``y = x + n``, ``n ~ N(0, sigma**2)``. The post used variance 0.1, i.e. ``sigma = sqrt(0.1)``.
Poisson
    ``y = Poisson(peak * x) / peak``: ``peak`` is the photon count of a white value, so the noise
    variance at value ``x`` is ``x / peak`` (smaller ``peak`` = darker scene = stronger noise).
    The post and ``skimage.util.random_noise(mode="poisson")`` instead use
    ``peak = 2 ** ceil(log2(number of distinct values))``, which makes the same face noisier or
    cleaner depending on its dtype or resizing (about 39 dB PSNR as float, 27 dB as 8-bit). An
    explicit ``peak`` avoids that; the post's setting on 8-bit faces is ``peak = 256``.
Salt & pepper
    Bernoulli, as in scikit-image: each *value* (``per="value"``, channels hit independently, giving
    coloured specks like the post's code) or each *pixel* (``per="pixel"``, all channels set
    together to black or white) is hit with probability ``amount``; a hit is salt (1) with
    probability ``salt_fraction``, else pepper (0). The count per image is therefore binomial,
    not exact. Every row, column and channel can be hit (the post's ``randint(0, dim - 1)`` never
    reached the last ones).
Speckle
    ``y = x + x * n``, ``n ~ N(0, sigma**2)``; the post used ``sigma = 1``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from denoising.catalogue import NOISE_KINDS, NOISE_NAMES, PRESET_PARAMS, STRENGTHS

log = logging.getLogger(__name__)

_SALT_PEPPER_PER = ("value", "pixel")


def _as_float(images: Any) -> np.ndarray:
    return np.asarray(images, dtype=np.float32)


def _finish(noisy: np.ndarray) -> np.ndarray:
    return np.clip(noisy, 0.0, 1.0).astype(np.float32, copy=False)


def _check_number(name: str, value: Any, low: float = 0.0, high: float = math.inf,
                  low_open: bool = False) -> float:
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = number <= low if low_open else number < low
    if too_low or number > high:
        bound = f"{'>' if low_open else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


def add_gaussian(images: Any, sigma: float, rng: Any = None) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma``.

    Parameters
    ----------
    images : array_like
        Float images in [0, 1], any shape (normally ``(N, H, W, 3)``).
    sigma : float
        Standard deviation of the noise, >= 0 (the post: ``sqrt(0.1)``).
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float32, same shape, clipped to [0, 1].
    """
    sigma = _check_number("sigma", sigma)
    x = _as_float(images)
    rng = np.random.default_rng(rng)
    return _finish(x + np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32))


def add_poisson(images: Any, peak: float, rng: Any = None) -> np.ndarray:
    """Photon-counting noise: ``Poisson(peak * x) / peak``.

    Parameters
    ----------
    images : array_like
        Float images in [0, 1], any shape.
    peak : float
        Expected photon count of a white value, > 0; the noise variance at value ``x`` is
        ``x / peak`` (the post on 8-bit faces: 256).
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float32, same shape, clipped to [0, 1].
    """
    peak = _check_number("peak", peak, low_open=True)
    x = np.clip(_as_float(images), 0.0, 1.0).astype(np.float64)  # Poisson needs non-negative rates
    rng = np.random.default_rng(rng)
    return _finish(rng.poisson(peak * x) / peak)


def add_salt_and_pepper(images: Any, amount: float, salt_fraction: float = 0.5, per: str = "value",
                        rng: Any = None) -> np.ndarray:
    """Turn a random share of values (or pixels) fully white (salt) or black (pepper).

    Parameters
    ----------
    images : array_like
        Float images in [0, 1], any shape; with ``per="pixel"`` the last axis is the channel axis.
    amount : float
        Probability in [0, 1] that a value (or pixel) is hit (the post: 0.004 per value).
    salt_fraction : float, optional
        Probability in [0, 1] that a hit is salt rather than pepper (default 0.5).
    per : {"value", "pixel"}, optional
        ``"value"``: every channel value is hit independently (coloured specks; the post and
        scikit-image). ``"pixel"``: a hit sets all channels of a pixel together.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float32, same shape, clipped to [0, 1].

    Notes
    -----
    Hits are Bernoulli draws (as in ``skimage.util.random_noise``), so the number of specks per
    image varies around ``amount * size``.
    """
    amount = _check_number("amount", amount, high=1.0)
    salt_fraction = _check_number("salt_fraction", salt_fraction, high=1.0)
    if per not in _SALT_PEPPER_PER:
        raise ValueError(f"per must be one of {', '.join(map(repr, _SALT_PEPPER_PER))}, got {per!r}")
    x = _as_float(images)
    if per == "pixel" and x.ndim == 0:
        raise ValueError("per='pixel' needs images with a channel axis (the last one)")
    rng = np.random.default_rng(rng)
    shape = x.shape if per == "value" else x.shape[:-1] + (1,)
    # One uniform draw decides both: u < amount*salt_fraction is salt, the rest of u < amount pepper.
    u = rng.random(shape)
    salt = u < amount * salt_fraction
    pepper = (u < amount) & ~salt
    out = np.where(salt, np.float32(1.0), np.where(pepper, np.float32(0.0), x))
    return _finish(out)


def add_speckle(images: Any, sigma: float, rng: Any = None) -> np.ndarray:
    """Multiplicative noise: ``x + x * n`` with ``n ~ N(0, sigma**2)``.

    Parameters
    ----------
    images : array_like
        Float images in [0, 1], any shape.
    sigma : float
        Standard deviation of ``n``, >= 0 (the post: 1).
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float32, same shape, clipped to [0, 1].
    """
    sigma = _check_number("sigma", sigma)
    x = _as_float(images)
    rng = np.random.default_rng(rng)
    return _finish(x + x * (np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32)))


# kind -> (function, required params, optional params with defaults)
_KINDS: dict[str, tuple[Any, tuple[str, ...], dict[str, Any]]] = {
    "gaussian": (add_gaussian, ("sigma",), {}),
    "poisson": (add_poisson, ("peak",), {}),
    "salt_pepper": (add_salt_and_pepper, ("amount",), {"salt_fraction": 0.5, "per": "value"}),
    "speckle": (add_speckle, ("sigma",), {}),
}


@dataclass(frozen=True)
class NoiseSpec:
    """One kind of noise with its parameters, validated and serialisable.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    params : dict
        ``gaussian``: ``sigma``; ``poisson``: ``peak``; ``salt_pepper``: ``amount``, optional
        ``salt_fraction`` (0.5) and ``per`` ("value"); ``speckle``: ``sigma``. Numbers are stored
        as floats and missing optional values filled in, so equal noise gives equal JSON.

    Raises
    ------
    ValueError
        Unknown kind, missing or unknown parameter, or a value out of range.
    """

    kind: str
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown noise kind {self.kind!r}; valid kinds: {', '.join(NOISE_KINDS)}")
        _, required, optional = _KINDS[self.kind]
        params = dict(self.params or {})
        valid = required + tuple(optional)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {self.kind} noise; "
                             f"valid: {', '.join(valid)}")
        missing = [name for name in required if name not in params]
        if missing:
            raise ValueError(f"{self.kind} noise needs parameter(s) {', '.join(missing)}")
        normal = {**optional, **params}
        for name, value in normal.items():
            if name != "per":
                normal[name] = float(value) if isinstance(value, (int, float, np.number)) \
                    and not isinstance(value, bool) else value
        try:  # validate with the checks the noise function itself runs, on an empty image
            _KINDS[self.kind][0](np.zeros((0, 1), np.float32), rng=0, **normal)
        except ValueError as exc:
            raise ValueError(f"{self.kind} noise: {exc}") from None
        object.__setattr__(self, "params", dict(sorted(normal.items())))

    def __hash__(self) -> int:
        return hash(self.to_json())

    def apply(self, images: Any, rng: Any = None) -> np.ndarray:
        """Add this noise to ``images`` (float in [0, 1]); float32 out, clipped to [0, 1]."""
        return _KINDS[self.kind][0](images, rng=rng, **self.params)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): ``{"kind":...,"params":{...}}``."""
        return json.dumps({"kind": self.kind, "params": self.params}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> NoiseSpec:
        """Inverse of :meth:`to_json`; raises ValueError on malformed text."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a noise spec JSON: {text!r} ({exc})") from None
        if not isinstance(data, dict) or set(data) != {"kind", "params"} or not isinstance(data["params"], dict):
            raise ValueError(f'noise spec JSON must be {{"kind": ..., "params": {{...}}}}, got {text!r}')
        return cls(data["kind"], data["params"])

    @property
    def strength(self) -> float:
        """The kind's one strength parameter (:data:`denoising.catalogue.STRENGTHS`: σ, peak, amount, σ)."""
        return float(self.params[STRENGTHS[self.kind].parameter])

    def with_strength(self, value: float) -> NoiseSpec:
        """The same noise at another strength (the other parameters kept); ValueError when out of range."""
        return NoiseSpec(self.kind, {**self.params, STRENGTHS[self.kind].parameter: value})

    @property
    def level(self) -> float:
        """How strong the noise is, as the number a range-trained network is told (its noise-level map).

        Gaussian: σ; Poisson: ``1 / sqrt(peak)`` (the noise's standard deviation on a white value);
        salt & pepper: the share of values hit; speckle: σ. Larger is always stronger.
        """
        return strength_level(self.kind, self.strength)

    @property
    def label(self) -> str:
        """Human text, e.g. ``"Gaussian, σ = 0.316"``."""
        p = self.params
        name = NOISE_NAMES[self.kind]
        if self.kind in ("gaussian", "speckle"):
            return f"{name}, σ = {p['sigma']:.3g}"
        if self.kind == "poisson":
            return f"{name}, peak = {p['peak']:g}"
        unit = "values" if p["per"] == "value" else "pixels"
        return f"{name}, {100 * p['amount']:.3g}% of {unit} ({100 * p['salt_fraction']:.3g}% white)"


#: Named settings as NoiseSpecs, built from :data:`denoising.catalogue.PRESET_PARAMS`: "post" (the
#: blog post's code) and "notebook" (its notebook's milder variant).
PRESETS: dict[str, dict[str, NoiseSpec]] = {
    preset: {kind: NoiseSpec(kind, params) for kind, params in kinds.items()}
    for preset, kinds in PRESET_PARAMS.items()
}


def strength_level(kind: str, strength: Any) -> Any:
    """:attr:`NoiseSpec.level` of a kind at ``strength`` (a number or an array of them)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; valid kinds: {', '.join(NOISE_KINDS)}")
    return 1.0 / np.sqrt(strength) if kind == "poisson" else strength


def level_strength(kind: str, level: Any) -> Any:
    """Inverse of :func:`strength_level`: the strength of a kind that has this noise level."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; valid kinds: {', '.join(NOISE_KINDS)}")
    return 1.0 / np.square(level) if kind == "poisson" else level


def derive_seed(*parts: Any) -> int:
    """A seed from any parts, stable across runs, processes and platforms.

    Parameters
    ----------
    *parts
        Values with a stable ``repr`` (str, int, float, bool, None); numpy scalars are converted
        to Python ones first so ``np.int64(3)`` and ``3`` give the same seed.

    Returns
    -------
    int
        The first 8 bytes of ``sha256("|".join(map(repr, parts)))``, shifted to lie in [0, 2**63).
    """
    text = "|".join(repr(p.item() if isinstance(p, np.generic) else p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def noisy_copies(images: Any, image_ids: Any, spec: NoiseSpec, base_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy versions of a batch, each face drawn from its own seed.

    Parameters
    ----------
    images : array_like
        Clean batch ``(N, H, W, 3)``, float in [0, 1].
    image_ids : sequence
        ``N`` ids (converted with ``str``), e.g. ``"000001.jpg"``.
    spec : NoiseSpec
        The noise to add.
    base_seed : int, optional
        Run-level seed (default 0).

    Returns
    -------
    noisy : numpy.ndarray
        float32 ``(N, H, W, 3)`` in [0, 1].
    seeds : numpy.ndarray
        int64 ``(N,)``: image ``i`` is ``spec.apply(images[i:i+1], default_rng(seeds[i]))``, with
        ``seeds[i] = derive_seed(base_seed, str(image_ids[i]), spec.kind, spec.to_json())``, so one
        face regenerated alone gives identical bytes.
    """
    x = _as_float(images)
    ids = [str(i) for i in image_ids]
    if x.ndim < 1 or len(ids) != len(x):
        raise ValueError(f"got {len(ids)} image ids for {len(x) if x.ndim else 0} images")
    key = spec.to_json()
    seeds = np.array([derive_seed(base_seed, i, spec.kind, key) for i in ids], dtype=np.int64)
    noisy = np.empty(x.shape, np.float32)
    for i, seed in enumerate(seeds):
        noisy[i] = spec.apply(x[i:i + 1], np.random.default_rng(int(seed)))[0]
    return noisy, seeds


__all__ = ["NOISE_KINDS", "NoiseSpec", "PRESETS", "add_gaussian",
           "add_poisson", "add_salt_and_pepper", "add_speckle", "derive_seed", "noisy_copies", "strength_level",
           "level_strength"]
