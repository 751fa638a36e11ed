"""U-Net generator (pix2pix style) sized for small faces.

Encoder: ``depth`` blocks of Conv(4x4, stride 2) - BatchNorm - LeakyReLU(0.2), widths
``base * 2**i`` capped at ``base * 8``; decoder: ConvTranspose(4x4, stride 2) - BatchNorm - ReLU
with a skip connection (channel concatenation) from the encoder block of the same size, as in
pix2pix. Two changes for denoising tiny images:

* **Sizes.** Inputs are reflect-padded up to a multiple of ``2**depth`` and cropped back, so
  28x28 becomes 32x32 (depth 4: 32 -> 16 -> 8 -> 4 -> 2, every pixel sees the whole face) and
  64x64 needs no padding. Any size works.
* **Residual output.** The last layer sees the full-resolution decoder features *and the noisy
  input* and predicts a correction: ``output = clamp(input + correction, 0, 1)``. Light noise
  (salt & pepper 0.004 hits 0.4% of values) then only needs small corrections, so clean pixels
  pass through untouched. :meth:`UNet.forward_raw` returns the unclamped sum for training
  losses (a clamp would zero the gradient of overshooting pixels).

Default size (base 16, depth 4, widths 16-32-64-128): 395,220 parameters, 0.8 MB in float16,
about 1,300 training images/s (forward + backward + Adam, batch 64, 28x28) on 2 CPU threads.
Depth 3 trains ~25% faster but each output pixel then sees at most 22 of the 32 padded pixels;
depth 4 sees the whole face, which matters at the post's heavy Gaussian and speckle noise.

No dropout by default: pix2pix uses it as its only noise source for diversity, which a
denoiser does not want.

Two options for the networks trained over a whole range of noise strengths (both off by default,
so the per-preset checkpoints rebuild exactly as before):

* ``cond_channels=1``: the network is told how strong the noise is, as a constant extra input
  channel (FFDNet's noise-level map); :meth:`UNet.forward` then takes ``level``.
* ``gated=True``: the head predicts a correction ``c`` and a gate ``g`` in (0, 1) per value, and
  ``output = input + g * (c - input)``. Where the gate is shut the input passes through exactly,
  which is what salt & pepper needs (99.6 % of values are untouched at the post's 0.4 %). A gate
  alone learns to stay shut (no gradient reaches the correction while it is), so training gives
  the correction its own loss (:meth:`UNet.forward_parts`). A trained gate still leaks a little
  everywhere (0.4 % of a correction adds up over 99.6 % of values), so after training a
  ``gate_threshold`` chosen on validation makes it all or nothing.
* ``full_res_layers``: 3x3 layers at full resolution feeding the head (a stride-2 encoder blurs
  single pixels); ``extreme_hint``: extra input channels marking values that are exactly 0 or 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                               nn.BatchNorm2d(cout), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """pix2pix-style U-Net generator with a residual, clamped output.

    Parameters
    ----------
    channels : int
        Image channels (3 for RGB).
    base : int
        Width of the first encoder block; block ``i`` has ``min(base * 2**i, base * max_mult)`` channels.
    depth : int
        Number of stride-2 encoder blocks (and decoder blocks).
    max_mult : int
        Cap on the width multiplier (pix2pix uses 8).
    dropout : float
        Dropout after the innermost decoder blocks (pix2pix uses 0.5; 0 disables it).

    Notes
    -----
    Input and output are NCHW tensors in [0, 1].
    """

    def __init__(self, channels: int = 3, base: int = 16, depth: int = 4, max_mult: int = 8, dropout: float = 0.0,
                 cond_channels: int = 0, gated: bool = False, full_res_layers: int = 0, extreme_hint: bool = False,
                 gate_threshold: float | None = None):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if cond_channels not in (0, 1):
            raise ValueError(f"cond_channels must be 0 or 1 (one noise-level map), got {cond_channels}")
        self.channels, self.base, self.depth, self.dropout = channels, base, depth, dropout
        self.max_mult, self.cond_channels, self.gated = max_mult, cond_channels, bool(gated)
        if full_res_layers < 0:
            raise ValueError(f"full_res_layers must be >= 0, got {full_res_layers}")
        self.full_res_layers, self.extreme_hint = full_res_layers, bool(extreme_hint)
        if gate_threshold is not None and not (gated and 0 < gate_threshold < 1):
            raise ValueError(f"gate_threshold needs gated=True and a number in (0, 1), got {gate_threshold}")
        self.gate_threshold = None if gate_threshold is None else float(gate_threshold)
        extra = cond_channels + (channels if self.extreme_hint else 0)
        widths = [min(base * 2 ** i, base * max_mult) for i in range(depth)]
        self.downs = nn.ModuleList()
        prev = channels + extra
        for i, w in enumerate(widths):
            self.downs.append(_down(prev, w, norm=i > 0))
            prev = w
        self.ups = nn.ModuleList()
        # decoder block j takes the previous decoder output (+ the matching skip) and doubles the size
        for j in range(depth - 1, -1, -1):
            cin = widths[j] if j == depth - 1 else widths[j] * 2
            cout = widths[j - 1] if j > 0 else base
            self.ups.append(_up(cin, cout, dropout if j >= depth - 2 and j > 0 else 0.0))
        # full resolution: decoder features + noisy input -> correction
        # full-resolution 3x3 layers: the stride-2 encoder blurs single pixels, and telling a lone
        # speck from its neighbours needs a non-linear look at the full-resolution image
        self.full_res = nn.Sequential(*[
            layer for i in range(full_res_layers)
            for layer in (nn.Conv2d(channels + extra if i == 0 else base, base, 3, padding=1), nn.ReLU())])
        head_in = base + channels + (base if full_res_layers else 0)
        # a gated head predicts the correction and the gate's logit for every value
        self.head = nn.Conv2d(head_in, channels * (2 if self.gated else 1), 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as the identity: output == input
        nn.init.zeros_(self.head.bias)

    def config(self) -> dict:
        """Constructor arguments, JSON-ready (a checkpoint rebuilds the model from them)."""
        config = {"channels": self.channels, "base": self.base, "depth": self.depth, "max_mult": self.max_mult,
                  "dropout": self.dropout}
        if self.cond_channels or self.gated or self.full_res_layers or self.extreme_hint:  # older cards: defaults
            config.update(cond_channels=self.cond_channels, gated=self.gated, full_res_layers=self.full_res_layers,
                          extreme_hint=self.extreme_hint, gate_threshold=self.gate_threshold)
        return config

    def _encoder_input(self, xp: torch.Tensor, level: torch.Tensor | float | None) -> torch.Tensor:
        parts = [xp]
        if self.extreme_hint:  # salt & pepper sets values to exactly 0 or 1: say where such values are
            parts.append(((xp <= 0) | (xp >= 1)).to(xp.dtype))
        if self.cond_channels:
            if level is None:
                raise ValueError("this network is told the noise level: pass level (one number per image)")
            level = torch.as_tensor(level, dtype=xp.dtype, device=xp.device).reshape(-1, 1, 1, 1)
            parts.append(level.expand(xp.shape[0], 1, *xp.shape[-2:]))
        return torch.cat(parts, dim=1) if len(parts) > 1 else xp

    def forward_parts(self, x: torch.Tensor, level: torch.Tensor | float | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Unclamped output, correction and gate logit (None when not gated), each cropped to x's size."""
        h, w = x.shape[-2:]
        m = 2 ** self.depth
        ph, pw = (-h) % m, (-w) % m
        top, left = ph // 2, pw // 2
        mode = "reflect" if ph < h and pw < w else "replicate"
        xp = F.pad(x, (left, pw - left, top, ph - top), mode=mode) if ph or pw else x
        skips = []
        y = inputs = self._encoder_input(xp, level)
        for down in self.downs:
            y = down(y)
            skips.append(y)
        y = skips.pop()
        for k, up in enumerate(self.ups):
            if k > 0:
                y = torch.cat([y, skips.pop()], dim=1)
            y = up(y)
        features = [y, xp, self.full_res(inputs)] if self.full_res_layers else [y, xp]
        head = self.head(torch.cat(features, dim=1))[..., top:top + h, left:left + w]
        if not self.gated:
            out = head + x
            return out, out, None
        delta, gate_logit = head.split(self.channels, dim=1)
        return x + torch.sigmoid(gate_logit) * delta, x + delta, gate_logit

    def forward_raw(self, x: torch.Tensor, level: torch.Tensor | float | None = None) -> torch.Tensor:
        """Input plus predicted correction, not clamped (for training losses).

        With a ``gate_threshold`` the gate is all or nothing: a value takes the correction where the
        gate exceeds the threshold and stays exactly as it was elsewhere.
        """
        out, correction, gate_logit = self.forward_parts(x, level)
        if self.gate_threshold is None or gate_logit is None:
            return out
        return torch.where(torch.sigmoid(gate_logit) > self.gate_threshold, correction, x)

    def forward(self, x: torch.Tensor, level: torch.Tensor | float | None = None) -> torch.Tensor:
        """Denoise a batch (N, C, H, W) in [0, 1]; output clamped to [0, 1].

        ``level``: the noise level per image (a number or N numbers), needed when ``cond_channels``.
        """
        return self.forward_raw(x, level).clamp(0.0, 1.0)
