#!/usr/bin/env python3
"""Write a small image folder dataset of real photos: faces and non-faces.

The 200 grayscale 25x25 crops of scikit-image's `lfw_subset` (100 faces from Labeled Faces
in the Wild, 100 non-face patches), as <output>/{train,val}/{no_face,face}/NNN.png with
every 5th image of each class in val: 160 train and 40 val images, the layout a model with
`source: folder` reads (see tests/folder_config.yaml). The files are the same for every run.

Example:
  python scripts/make_sample_folder.py --output results/sample_faces
"""

import io
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from PIL import Image
from skimage import data

from vww.base.cli import cli_parser, main_guard
from vww.base.files import atomic_path

CLASS_NAMES = ("no_face", "face")
VAL_EVERY = 5


def write_png(path, pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(out.getvalue())


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--output", required=True, help="root of the folder dataset to write")
    args = parser.parse_args(argv)
    crops = (data.lfw_subset() * 255).round().astype("uint8")  # faces first, then the rest
    half = len(crops) // 2
    for label, name in enumerate(reversed(CLASS_NAMES)):
        for index, pixels in enumerate(crops[label * half:(label + 1) * half]):
            split = "val" if index % VAL_EVERY == 0 else "train"
            write_png(Path(args.output) / split / name / f"{index:03d}.png", pixels)
    print(f"{args.output}: {len(crops)} images, classes {', '.join(CLASS_NAMES)}")


if __name__ == "__main__":
    main_guard(main)
