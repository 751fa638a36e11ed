"""The blog post's convolutional autoencoder, layer for layer, in PyTorch.

The post's Keras model (encoder then decoder)::

    Conv2D(32, 3x3, stride 2, 'same') - LeakyReLU(0.2) - BatchNorm
    Conv2D(64, 3x3, stride 2, 'same') - LeakyReLU(0.2) - BatchNorm
    Flatten - Dense(100)
    Dense(7*7*64) - Reshape(7, 7, 64)
    Conv2DTranspose(64, 3x3, stride 2, 'same') - LeakyReLU(0.2) - BatchNorm
    Conv2DTranspose(32, 3x3, stride 2, 'same') - LeakyReLU(0.2) - BatchNorm
    Conv2DTranspose(3, 3x3, 'same') - sigmoid

At 28x28x3 the trainable parameters are 333,284 (encoder) and 373,187 (decoder),
exactly as in the post's Keras summary (Keras counts BatchNorm's moving mean and
variance as non-trainable; PyTorch keeps them as buffers, so the trainable counts agree).
"""

from __future__ import annotations

import torch
from torch import nn


class Autoencoder(nn.Module):
    """Convolutional autoencoder of the post, for square RGB images.

    Parameters
    ----------
    image_size : int
        Height and width of the (square) input; must be divisible by 4 because the
        encoder halves it twice (28 -> latent grid 7x7, 64 -> 16x16).
    channels : int
        Image channels (3 for RGB).
    filters : tuple of int
        Convolution widths of the encoder (the decoder mirrors them).
    latent_dim : int
        Size of the dense bottleneck.

    Notes
    -----
    Keras 'same' padding with stride 2 pads only bottom/right when the total padding is
    odd; PyTorch pads symmetrically. ``padding=1`` (and ``output_padding=1`` for the
    transposed convolutions) gives the same output shapes and parameter counts; the
    half-pixel alignment differs, which does not matter for a model trained from scratch.
    Input and output are NCHW tensors in [0, 1].
    """

    def __init__(self, image_size: int = 28, channels: int = 3, filters: tuple[int, ...] = (32, 64),
                 latent_dim: int = 100):
        super().__init__()
        if image_size % (2 ** len(filters)) != 0:
            raise ValueError(f"image_size must be divisible by {2 ** len(filters)}, got {image_size}")
        self.image_size, self.channels = image_size, channels
        self.filters, self.latent_dim = tuple(filters), latent_dim
        self.grid = image_size // 2 ** len(filters)

        enc: list[nn.Module] = []
        prev = channels
        for f in filters:
            enc += [nn.Conv2d(prev, f, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.BatchNorm2d(f)]
            prev = f
        enc += [nn.Flatten(), nn.Linear(prev * self.grid * self.grid, latent_dim)]
        self.encoder = nn.Sequential(*enc)

        self.decoder_dense = nn.Linear(latent_dim, prev * self.grid * self.grid)
        dec: list[nn.Module] = []
        for f in reversed(filters):
            dec += [nn.ConvTranspose2d(prev, f, 3, stride=2, padding=1, output_padding=1),
                    nn.LeakyReLU(0.2), nn.BatchNorm2d(f)]
            prev = f
        dec += [nn.ConvTranspose2d(prev, channels, 3, stride=1, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)

    def config(self) -> dict:
        """Constructor arguments, JSON-ready (a checkpoint rebuilds the model from them)."""
        return {"image_size": self.image_size, "channels": self.channels,
                "filters": list(self.filters), "latent_dim": self.latent_dim}

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent codes (N, latent_dim) to images (N, C, H, W)."""
        h = self.decoder_dense(z).view(z.shape[0], self.filters[-1], self.grid, self.grid)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch (N, C, H, W) in [0, 1]."""
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"this autoencoder was built for {self.image_size}x{self.image_size} images, "
                             f"got {tuple(x.shape[-2:])}")
        return self.decode(self.encoder(x))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters of the encoder and decoder (as in the post's Keras summary)."""
        enc = sum(p.numel() for p in self.encoder.parameters() if p.requires_grad)
        dec = sum(p.numel() for p in self.parameters() if p.requires_grad) - enc
        return {"encoder": enc, "decoder": dec}
