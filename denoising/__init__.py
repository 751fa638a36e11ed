"""Face-denoising lab: faces, noise, classical and learned denoisers, metrics.

Arrays in, arrays out: images are float32 in [0, 1] with shape (N, H, W, 3).
This package never imports streamlit and never prints; it logs.
"""

__version__ = "0.2.0"
