#!/usr/bin/env python3
"""Make the face-rule test fixtures from NASA's public-domain astronaut portrait.

The source is `skimage/data/astronaut.png` (512x512, Eileen Collins, NASA) as shipped inside the
scikit-image wheel:

    pip download scikit-image --no-deps --only-binary=:all: -d /tmp/sk
    unzip -j /tmp/sk/scikit_image-*.whl skimage/data/astronaut.png -d /tmp/sk
    pip install pillow
    python3 make_faces.py /tmp/sk/astronaut.png

Writes the JPEG fixtures next to this script. Every output is checked to stay under 100 KB so the
fixtures keep the repository small.
"""

import os
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
# The face with hair and chin, in the 512x512 source (x0, y0, x1, y1): the face itself is about
# 110 px wide, so this crop makes it more than half of the picture in both directions.
PORTRAIT = (135, 15, 315, 225)
# Top right of the source: the shuttle model and the studio backdrop, no face.
NO_FACE = (330, 0, 512, 300)
# Studio backdrop grey, sampled from the source's top edge.
BACKDROP = (175, 170, 165)
QUALITY = 85


def save(img, name):
    path = os.path.join(HERE, name)
    img.save(path, "JPEG", quality=QUALITY, optimize=True)
    size = os.path.getsize(path)
    assert size < 100 * 1024, f"{name} is {size} bytes"
    print(f"{name}: {img.width}x{img.height}, {size} bytes")


def main():
    src = Image.open(sys.argv[1]).convert("RGB")
    assert src.size == (512, 512), src.size
    crop = src.crop(PORTRAIT)  # 180x210

    # Passes: the crop at 2x (360x420), face about 220 px, well over 1/3 of both sides.
    portrait = crop.resize((crop.width * 2, crop.height * 2), Image.LANCZOS)
    save(portrait, "portrait_ok.jpg")

    # No face: the shuttle corner, enlarged to a portrait-like 364x600.
    no_face = src.crop(NO_FACE)
    save(no_face.resize((no_face.width * 2, no_face.height * 2), Image.LANCZOS), "no_face.jpg")

    # Two faces: two copies of the portrait side by side on one 720x420 canvas.
    two = Image.new("RGB", (portrait.width * 2, portrait.height), BACKDROP)
    two.paste(portrait, (0, 0))
    two.paste(portrait.transpose(Image.FLIP_LEFT_RIGHT), (portrait.width, 0))
    save(two, "two_faces.jpg")

    # Too small in pixels: the crop at 0.6x (108x126), face about 65 px. Still more than 1/3 of
    # the picture, so only the 128x128 rule fails.
    small = crop.resize((round(crop.width * 0.6), round(crop.height * 0.6)), Image.LANCZOS)
    save(small, "face_too_small.jpg")

    # Too small in the picture: the 2x portrait (face about 220 px, over 128) in the middle of a
    # 1000x800 backdrop, so the face is only about a fifth of the width and a quarter of the height.
    canvas = Image.new("RGB", (1000, 800), BACKDROP)
    canvas.paste(portrait, ((1000 - portrait.width) // 2, (800 - portrait.height) // 2))
    save(canvas, "face_small_in_picture.jpg")


if __name__ == "__main__":
    main()
