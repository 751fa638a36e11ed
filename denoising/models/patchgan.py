"""Conditional PatchGAN discriminator (pix2pix), small enough for 28x28 faces.

The discriminator sees the noisy input and an image (clean or generated) stacked on the
channel axis and scores each overlapping patch: Conv(4x4, s2) - LeakyReLU, then
``n_layers - 1`` blocks Conv(4x4, s2) - BatchNorm - LeakyReLU, then a 3x3 convolution to one
score per patch (no sigmoid: trained with the least-squares GAN loss). With the default two
stride-2 blocks a 28x28 pair gives a 7x7 map (64x64 gives 16x16); each score sees an 18x18
pixel patch, the small-image counterpart of pix2pix's 70x70 patches on 256x256 photos.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchGAN(nn.Module):
    """Conditional patch discriminator.

    Parameters
    ----------
    channels : int
        Channels of one image; the network input has ``2 * channels`` (condition + image).
    base : int
        Width of the first convolution; each further block doubles it.
    n_layers : int
        Number of stride-2 convolutions (each halves the map).
    """

    def __init__(self, channels: int = 3, base: int = 16, n_layers: int = 2):
        super().__init__()
        self.channels, self.base, self.n_layers = channels, base, n_layers
        layers: list[nn.Module] = [nn.Conv2d(2 * channels, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        prev = base
        for i in range(1, n_layers):
            w = base * 2 ** i
            layers += [nn.Conv2d(prev, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            prev = w
        layers.append(nn.Conv2d(prev, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def config(self) -> dict:
        """Constructor arguments, JSON-ready."""
        return {"channels": self.channels, "base": self.base, "n_layers": self.n_layers}

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Patch scores (N, 1, h, w) for ``image`` given the noisy ``condition`` (both NCHW)."""
        return self.net(torch.cat([condition, image], dim=1))
