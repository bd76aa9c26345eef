#!/usr/bin/env python3
"""Write slim's labels.txt (`0:background`, `1:<category>`) for a VWW dataset.

The classes are read from a VWW annotations JSON (make_vww_annotations.py or
index_image_folder.py), so the label map always matches the labels in the TFRecords.

Example:
  python scripts/write_label_map.py --annotations vww_train.json --output labels.txt
"""


import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import write_text
from vww.data.coco import label_map_text, load_json


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--annotations", required=True, help="VWW annotations JSON")
    parser.add_argument("--output", required=True, help="labels.txt to write")
    args = parser.parse_args(argv)
    write_text(args.output, label_map_text(load_json(args.annotations)["categories"]))


if __name__ == "__main__":
    main_guard(main)
