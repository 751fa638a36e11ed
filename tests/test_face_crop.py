"""The Noise lab's crop of a user photo around its face, framed like the training faces (denoising.faces)."""

from __future__ import annotations

import numpy as np
import pytest

from denoising.faces import FACE_FRAME, crop_to_face, find_face


def _astronaut(side: int = 256) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    return resize(data.astronaut(), (side, side), anti_aliasing=True).astype(np.float32)


def test_a_face_is_found_and_framed_with_the_eyes_on_the_middle_line():
    image = _astronaut()
    crop = crop_to_face(image)
    assert crop.face is not None
    left, top, width, height = crop.face
    # scikit-image's astronaut: her face lies in the upper middle of the picture
    assert 60 <= left + width / 2 <= 140 and 30 <= top + height / 2 <= 90
    square_left, square_top, side = crop.square
    assert crop.pixels.shape == (side, side, 3)
    np.testing.assert_array_equal(crop.pixels, image[square_top:square_top + side, square_left:square_left + side])
    assert side == pytest.approx(FACE_FRAME[0] * width, abs=1)
    # the whole face box inside the square, the square's centre above the box's (eyes, not nose, in the middle)
    assert square_left <= left and left + width <= square_left + side
    assert square_top <= top and top + height <= square_top + side
    assert square_top + side / 2 < top + height / 2


def test_without_a_face_the_centred_square_is_used():
    gradient = np.tile(np.linspace(0, 1, 90, dtype=np.float32), (60, 1))
    crop = crop_to_face(np.dstack([gradient, gradient[:, ::-1], gradient]))
    assert crop.face is None and crop.square == (15, 0, 60)
    assert crop.pixels.shape == (60, 60, 3)
    # grey (H, W) and pictures smaller than the detector's window work too
    assert crop_to_face(gradient).square == (15, 0, 60)
    assert find_face(np.zeros((20, 30), np.float32)) is None
    assert crop_to_face(np.zeros((20, 30), np.float32)).square == (5, 0, 20)


def test_a_face_near_the_edge_keeps_a_whole_square_inside_the_picture():
    image = _astronaut()[20:140, 40:]  # her face so close to the top edge that its frame would cross it
    crop = crop_to_face(image)
    assert crop.face is not None
    face_left, face_top, width, height = crop.face
    left, top, side = crop.square
    assert face_top + height / 2 + width * FACE_FRAME[2] - side / 2 < 0  # where the frame would start: above
    assert top == 0 and left >= 0 and left + side <= image.shape[1] and top + side <= image.shape[0]
    assert crop.pixels.shape[:2] == (side, side)


def test_on_celeba_the_frame_matches_the_training_crop(shared_data):
    """On CelebA's aligned photos the detector's frame lands on the training faces' centred square (rows 20-197)."""
    from PIL import Image

    files = sorted((shared_data / "celeba" / "img_align_celeba").glob("*.jpg"))[:12]
    framed = []
    for path in files:
        pixels = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255  # 178 wide, 218 high
        crop = crop_to_face(pixels)
        if crop.face is not None:
            framed.append(crop.square)
    assert len(framed) >= 8
    left, top, side = np.median(np.array(framed), axis=0)
    assert abs(side - 178) <= 20 and abs(top - 20) <= 12 and abs(left) <= 12
