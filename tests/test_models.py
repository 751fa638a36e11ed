"""Model architectures and the registry entries built from checkpoints."""

import numpy as np
import pytest
import torch

from denoising.models.autoencoder import Autoencoder
from denoising.models.patchgan import PatchGAN
from denoising.models.unet import UNet


def test_autoencoder_matches_post_parameter_counts():
    model = Autoencoder(image_size=28)
    assert model.param_counts() == {"encoder": 333_284, "decoder": 373_187}
    # Keras' "non-trainable" BatchNorm statistics: 192 in each half
    stats = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert stats == 2 * 192


@pytest.mark.parametrize("size", [28, 64])
def test_output_shapes_and_range(size):
    x = torch.rand(3, 3, size, size)
    for model in (Autoencoder(image_size=size), UNet()):
        with torch.no_grad():
            y = model.eval()(x)
        assert y.shape == x.shape
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    scores = PatchGAN().eval()(x, x)
    assert scores.shape == (3, 1, size // 4, size // 4)


def test_autoencoder_latent_grid_adapts_and_rejects_other_sizes():
    assert Autoencoder(image_size=64).grid == 16
    with pytest.raises(ValueError, match="built for 28x28"):
        Autoencoder(image_size=28)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible by 4"):
        Autoencoder(image_size=30)


def test_fresh_unet_is_the_identity_and_handles_odd_sizes():
    # zero-initialised head: an untrained generator returns its input (residual design)
    x = torch.rand(2, 3, 28, 28)
    assert torch.allclose(UNet().eval()(x), x, atol=1e-6)
    assert UNet(depth=4)(torch.rand(1, 3, 13, 21)).shape == (1, 3, 13, 21)


def test_learned_denoisers_from_checkpoint_dir(tmp_path, tiny_faces):
    from denoising.models.checkpoint import save
    from denoising.models.learned import learned_denoisers
    from denoising.noise import PRESETS

    assert learned_denoisers(tmp_path) == {}
    assert learned_denoisers(tmp_path / "absent") == {}
    torch.manual_seed(0)
    model = UNet(base=8, depth=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save(model, tmp_path, "unet_l1", "gaussian", weights_dtype="float32")
    methods = learned_denoisers(tmp_path)
    assert list(methods) == ["unet_l1"]
    method = methods["unet_l1"]
    assert (method.family, method.slow, method.display_name) == ("learned", False, "U-Net, L1 only (no GAN)")
    assert method.available("gaussian") and not method.available("poisson")
    out = method(tiny_faces, PRESETS["post"]["gaussian"])
    assert out.dtype == np.float32 and out.shape == tiny_faces.shape
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(tiny_faces).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(out, expected)
    assert not np.allclose(out, tiny_faces)
    with pytest.raises(ValueError, match="no unet_l1 checkpoint for noise kind 'poisson'"):
        method(tiny_faces, PRESETS["post"]["poisson"])


@pytest.mark.parametrize("arch", ["autoencoder", "pix2pix", "unet_l1"])
def test_each_recipe_builds_the_model_class_the_catalogue_names(arch):
    from denoising.catalogue import ARCH_MODEL
    from denoising.models.checkpoint import model_class_name
    from denoising.training import TrainConfig, build_models

    gen, disc = build_models(arch, 28, TrainConfig())
    assert model_class_name(gen) == ARCH_MODEL[arch]
    assert (disc is not None) == (arch == "pix2pix")
