#!/usr/bin/env python3
"""Derive Visual Wake Words labels for one COCO 2014 split.

Reads annotations/instances_<split>2014.json and writes a VWW annotations JSON: every image
of the split, sorted by id, with label 1 if at least one annotation of --category covers
strictly more than --area-threshold of the image (area / (width * height)), else 0, and
the boxes of the objects that decided it.

Example:
  python scripts/make_vww_annotations.py \\
      --instances data/coco/annotations/instances_val2014.json \\
      --category person --area-threshold 0.005 --output vww_val.json
"""

import logging
import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.data.coco import UnknownCategoryError, load_json, vww_annotations


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--instances", required=True, help="COCO instances_*.json")
    parser.add_argument("--category", default="person", help="foreground COCO category name")
    parser.add_argument("--area-threshold", type=float, default=0.005,
                        help="minimum object area as a fraction of the image (exclusive)")
    parser.add_argument("--output", required=True, help="VWW annotations JSON to write")
    args = parse_logged_args(parser, argv)

    instances = load_json(args.instances)
    try:
        vww = vww_annotations(instances, args.category, args.area_threshold, args.instances)
    except UnknownCategoryError as err:
        sys.exit(f"error: {err} (config key: models.<name>.category)")
    write_json(args.output, vww)

    positives = sum(image["label"] for image in vww["images"])
    logging.info(
        "%s: %d images, %d labelled %s (%.1f%%), %d background",
        args.instances, len(vww["images"]), positives, args.category,
        100.0 * positives / max(1, len(vww["images"])), len(vww["images"]) - positives,
    )


if __name__ == "__main__":
    main_guard(main)
