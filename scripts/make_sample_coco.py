#!/usr/bin/env python3
"""Write a small synthetic COCO 2014 dataset, to try the workflow without the 19 GB download.

It has the exact COCO 2014 layout (OUTPUT/train2014/COCO_train2014_%012d.jpg, OUTPUT/val2014/,
OUTPUT/annotations/instances_{train,val}2014.json with the 80 real categories) and the
awkward cases of the real data: grayscale and CMYK JPEGs, PNG bytes under a .jpg name, one
unreadable image per split, crowd annotations, images without annotations and images whose
only persons are too small for a "person" label. About half of the images show a person,
drawn so that a small grayscale classifier can learn it in a few hundred steps. The same
arguments always give byte-identical files.

With --scale it writes a dataset of COCO 2014's own size instead (82,783 train and 40,504
val images unless --train-images/--val-images say otherwise; COCO's image sizes, about 7
annotations per image with polygons of COCO's length; about 7 GB of images and a 0.4 GB
train instances JSON), in parallel with --workers processes, to rehearse the main job at full
size (tests/scale/rehearse.sh). Its bytes do not depend on the number of workers.

Use it with download: false and coco_dir: OUTPUT. With --zips, the three zips are also
written the way COCO publishes them (same member names), to test the download and extract
steps; their md5s are printed on stdout as a YAML coco_md5 entry for the config. The summary
of what was written goes to stderr.

Examples:
  python scripts/make_sample_coco.py --output data/sample_coco --zips data/sample_zips
  python scripts/make_sample_coco.py --scale --output data/scale_coco --zips data/scale_zips
"""

import argparse
import os
import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.sample.coco import (
    COCO_2014_IMAGES,
    MIN_IMAGES_PER_SPLIT,
    write_coco_scale,
    write_sample_coco,
    write_sample_zips,
)


def _split_size(value):
    """argparse type: enough images per split to hold every special case."""
    number = int(value)
    if number < MIN_IMAGES_PER_SPLIT:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_IMAGES_PER_SPLIT} (one image per special case)")
    return number


def parse_args(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="COCO root to write (created if missing).")
    parser.add_argument("--zips", metavar="DIR",
                        help="Also write train2014.zip, val2014.zip and "
                             "annotations_trainval2014.zip here and print their md5s.")
    parser.add_argument("--scale", action="store_true",
                        help="COCO 2014's size, image sizes and annotation counts instead of "
                             "the small sample.")
    parser.add_argument("--train-images", type=_split_size,
                        help="Images in train2014 (default: 160, with --scale "
                             f"{COCO_2014_IMAGES['train2014']:,}).")
    parser.add_argument("--val-images", type=_split_size,
                        help="Images in val2014 (default: 80, with --scale "
                             f"{COCO_2014_IMAGES['val2014']:,}).")
    parser.add_argument("--workers", type=int,
                        help=f"Processes that draw the images with --scale "
                             f"(default: the CPUs, {os.cpu_count()}).")
    parser.add_argument("--small-person-share", type=float, default=0.0,
                        help="Share of the images with a person that hold one small person "
                             "instead (labelled person, box under about 5%% of the image; "
                             "default: %(default)s, the sample as it always was).")
    parser.add_argument("--seed", type=int, default=2014,
                        help="Random seed; a different seed gives a different sample "
                             "(default: %(default)s).")
    args = parser.parse_args(argv)
    if args.workers is not None and not args.scale:
        parser.error("--workers is for --scale; the small sample is drawn in one process")
    if not 0 <= args.small_person_share <= 1:
        parser.error(f"--small-person-share must be in [0, 1], got {args.small_person_share}")
    if args.small_person_share and args.scale:
        parser.error("--small-person-share is for the small sample")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.scale:
        summary = write_coco_scale(
            args.output, train_images=args.train_images or COCO_2014_IMAGES["train2014"],
            val_images=args.val_images or COCO_2014_IMAGES["val2014"], seed=args.seed,
            workers=args.workers)
    else:
        summary = write_sample_coco(args.output, train_images=args.train_images or 160,
                                    val_images=args.val_images or 80, seed=args.seed,
                                    small_person_share=args.small_person_share)
    for split, info in summary.items():
        cases = ", ".join(f"{case} {len(names):,}" for case, names in info.items()
                          if isinstance(names, list))
        print(f"{split}: {info['images']:,} images, {info['person_images']:,} labelled person, "
              f"{info['annotations']:,} annotations; {cases}", file=sys.stderr)
    if args.zips:
        md5s = write_sample_zips(args.output, args.zips)
        print("coco_md5:")
        for name, md5 in md5s.items():
            print(f"  {name}: {md5}")
    return 0


if __name__ == "__main__":
    main_guard(main)
