"""Learned denoisers (PyTorch): the post's autoencoder, a pix2pix U-Net and its L1-only ablation.

torch is imported by the network modules and :mod:`.checkpoint`, never by this package's
``__init__`` or :mod:`.learned`, so ``import denoising.models.learned`` stays light.
"""
