#!/usr/bin/env python3
"""Write the frames the firmware scores, as camera pixels, and the scores it must print.

The frames: TFLM's person_detection test frames (testdata/person.bmp, no_person.bmp in the
TFLM tree; their bytes are pixel XOR 0x80, see vww/mcu/frames.py), then the first
--val-frames val images as the board's camera gives them (the whole picture at the
model's size, 8-bit). --output-frames gets their pixels back to back, kMaxImageSize bytes
each, in that order; --output a JSON with, per frame, its name and the int8 scores of
LiteRT and of TFLM's Python interpreter on the board's input of it (the settings header's
kPixelToInput), which must agree.

Example:
  python scripts/make_mcu_frames.py --tflite results/person_detection/person_detection.tflite \\
      --tflm results/mcu/tflm --records results/datasets/.../records/val.record-* \\
      --val-frames 8 --output-frames frames.bin --output frames.json
"""

import logging
import sys
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path, sha256_file, write_json
from vww.export import micro
from vww.export.litert import load_classifier
from vww.mcu.frames import (
    TEST_FRAMES,
    TEST_FRAMES_DIR,
    as_channels,
    reference_scores,
    tflm_test_frame,
    val_frames,
)
from vww.model import recipe
from vww.model.dataset import add_records_argument, record_files


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="int8 .tflite")
    parser.add_argument("--tflm", required=True, help="TFLM tree (unpack_tflm_sources.py)")
    add_records_argument(parser, "val")
    parser.add_argument("--val-frames", type=int, default=8, help="val images (default 8)")
    parser.add_argument("--output-frames", required=True, help="pixels of the frames")
    parser.add_argument("--output", required=True, help="JSON of the frames' scores")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)
    if args.val_frames < 0:
        parser.error("--val-frames must be >= 0")

    model, litert = load_classifier(args.tflite, settings)
    channels = 1 if settings["grayscale"] else 3
    names, frames = [], []
    for name in TEST_FRAMES:
        path = Path(args.tflm) / TEST_FRAMES_DIR / f"{name}.bmp"
        try:
            gray = tflm_test_frame(path)
        except ValueError as err:
            raise InputError(path, err) from err
        if gray.shape != (settings["image_size"],) * 2:
            raise InputError(path, f"{gray.shape} frame, not the model's "
                                   f"{settings['image_size']}x{settings['image_size']}")
        names.append(f"tflm:{name}")
        frames.append(as_channels(gray, channels))
    for name, frame in val_frames(record_files(args.records, "val"), settings, args.val_frames):
        names.append(f"val:{name}")
        frames.append(frame)
    try:
        scores = reference_scores(model, litert, frames)
    except micro.MicroError as err:
        raise InputError(args.tflite, err) from err

    with atomic_path(args.output_frames) as tmp:
        tmp.write_bytes(b"".join(np.ascontiguousarray(frame, np.uint8).tobytes()
                                 for frame in frames))
    report = {
        "tflite_sha256": sha256_file(args.tflite),
        "frame_bytes": int(frames[0].size),
        "frames": [{"name": name, **score} for name, score in zip(names, scores)],
    }
    write_json(args.output, report)
    differ = [frame for frame in report["frames"] if frame["litert"] != frame["tflm_python"]]
    logging.info("%d frames; LiteRT and TFLM's Python interpreter differ on %d",
                 len(frames), len(differ))
    if differ:
        sys.exit(f"error: {args.tflite}: LiteRT and TFLM disagree on {len(differ)} frames "
                 f"(first: {differ[0]})")


if __name__ == "__main__":
    main_guard(main)
