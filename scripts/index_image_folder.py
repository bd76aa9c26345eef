#!/usr/bin/env python3
"""Label the images of an image folder split: the Visual Wake Words annotations of a folder.

Reads <folder>/<split>/<class name>/ for the two --class-names (negative first: label 0,
then label 1) and writes the same VWW annotations JSON as make_vww_annotations.py writes
for COCO, so the same rules turn either into TFRecords. Images carry no boxes: training
crops anywhere in them. Images are the files Pillow identifies as images by their content,
whatever their names (vww/data/folders.py); a file that cannot be opened (a broken link) or is
named like an image but is not one is listed too, and the shard stage reports it as
unreadable. The other files are left out and listed in the log with the reason; a missing
or extra class folder, or one without an image, is an error naming the folder.

Example:
  python scripts/index_image_folder.py --folder data/my_images --split train \\
      --class-names no_person person --output vww_train.json
"""

import logging
import sys
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.data.folders import FolderLayoutError, folder_annotations


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--folder", required=True, help="root of the image folder dataset")
    parser.add_argument("--split", required=True, help="subfolder to label (train, val)")
    parser.add_argument("--class-names", nargs=2, required=True, metavar=("NEGATIVE", "POSITIVE"),
                        help="the class subfolders, label 0 first")
    parser.add_argument("--output", required=True, help="VWW annotations JSON to write")
    args = parse_logged_args(parser, argv)

    try:
        annotations, skipped = folder_annotations(args.folder, args.split, args.class_names)
    except FolderLayoutError as err:
        sys.exit(f"error: {err} (config keys: models.<name>.folder, class_names)")
    for item in skipped:
        logging.warning("skipped %s: %s", Path(args.folder, args.split, item["file_name"]),
                        item["reason"])
    write_json(args.output, annotations)
    images = annotations["images"]
    positives = sum(image["label"] for image in images)
    logging.info("%s/%s: %d images, %d %s, %d %s; %d files skipped", args.folder, args.split,
                 len(images), len(images) - positives, args.class_names[0], positives,
                 args.class_names[1], len(skipped))


if __name__ == "__main__":
    main_guard(main)
