#!/usr/bin/env python3
"""Write one TFRecord shard of a Visual Wake Words split.

The shard holds every --num-shards-th image of the VWW annotations (id-sorted), starting
at --shard, so independent jobs build the shards in parallel and together hold every image
exactly once. Images TensorFlow's JPEG decoder cannot read as stored (CMYK, PNG data under
a .jpg name, PNG files) are re-encoded, and with --max-image-side larger images are
stored downscaled so their longer side is --max-image-side pixels; images that cannot be
read at all are skipped and listed in the JSON report with the reason. The report also
gives the sha256 of every stored image's source file, so images that appear in two splits
can be found, and the shard's own sha256, so a shard damaged later is found. The shard is
written under a temporary name and moved into place only when complete.

Example:
  python scripts/build_tfrecord_shard.py --annotations vww_train.json \\
      --images data/coco/train2014 --shard 0 --num-shards 100 \\
      --output records/train.record-00000-of-00100 --report reports/train-00000.json \
      --max-image-side 192
"""

import hashlib
import logging
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import tensorflow as tf

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path, sha256_file, write_json
from vww.data.coco import load_json
from vww.data.images import UnreadableImageError, tf_jpeg
from vww.data.records import serialize_example, shard_images


def build_shard(images, images_dir, output, max_image_side=None):
    """Write the records of `images` to `output`; return the shard's report.

    Images are stored with their longer side at most `max_image_side` pixels (None: as they are).
    """
    reencoded, skipped, labels, source_sha256 = [], [], [0, 0], {}
    decoded_bytes = 0  # what the stored images take decoded: training's cache
    with atomic_path(output) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for image in images:
            path = Path(images_dir) / image["file_name"]
            try:
                data = path.read_bytes()
                stored = tf_jpeg(data, image["file_name"], max_image_side)
            except (OSError, UnreadableImageError) as err:
                # The reason without the name, so a summary can count alike failures.
                why = (err.strerror or str(err) if isinstance(err, OSError)
                       else str(err).removeprefix(f"{image['file_name']}: "))
                logging.warning("skipped %s: %s", path, why)
                skipped.append({"file_name": image["file_name"], "id": image["id"],
                                "reason": why})
                continue
            if stored.reason:
                reencoded.append({"file_name": image["file_name"], "reason": stored.reason})
            writer.write(serialize_example(image, stored.jpeg, stored.height, stored.width,
                                           stored.orientation))
            labels[image["label"]] += 1
            decoded_bytes += stored.height * stored.width * 3
            source_sha256[image["file_name"]] = hashlib.sha256(data).hexdigest()
    return {
        "images": len(images),
        "records": sum(labels),
        "records_by_label": {"0": labels[0], "1": labels[1]},
        "decoded_bytes": decoded_bytes,
        "reencoded": reencoded,
        "skipped": skipped,
        "source_sha256": source_sha256,
        "output": Path(output).name,
        # The shard's own: what training and `snakemake verify` check it against.
        "sha256": sha256_file(output),
    }


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--annotations", required=True, help="VWW annotations JSON of the split")
    parser.add_argument("--images", required=True, help="folder of the split's images")
    parser.add_argument("--shard", type=int, required=True, help="shard index, from 0")
    parser.add_argument("--num-shards", type=int, required=True, help="shards in the split")
    parser.add_argument("--output", required=True, help="TFRecord file to write")
    parser.add_argument("--report", required=True, help="JSON report to write")
    parser.add_argument("--max-image-side", type=int, default=0,
                        help="store images downscaled to this longer side, in pixels "
                             "(0, the default: as they are)")
    args = parse_logged_args(parser, argv)
    if not 0 <= args.shard < args.num_shards:
        parser.error(f"--shard must be in [0, {args.num_shards})")
    if args.max_image_side < 0:
        parser.error("--max-image-side must be a number of pixels, or 0")
    max_image_side = args.max_image_side or None

    images = shard_images(load_json(args.annotations)["images"], args.shard, args.num_shards)
    report = build_shard(images, args.images, args.output, max_image_side)
    report.update(shard=args.shard, num_shards=args.num_shards, max_image_side=max_image_side)
    write_json(args.report, report)
    logging.info(
        "%s: %d records from %d images (%d re-encoded, %d skipped)", args.output,
        report["records"], report["images"], len(report["reencoded"]), len(report["skipped"]),
    )


if __name__ == "__main__":
    main_guard(main)
