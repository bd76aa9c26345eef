#!/usr/bin/env python3
"""Summarize the TFRecord shards of a VWW dataset from their per-shard reports.

Checks that the shards of each split together cover every image of the split exactly once
(records + skipped = images in the annotations) and writes, per split: record counts per
label, the re-encoded images and every skipped image with its reason.

Example:
  python scripts/summarize_dataset.py --split train vww_train.json reports/train-*.json \\
      --split val vww_val.json reports/val-*.json --output summary.json
"""

import argparse
import logging
import sys

from vww.coco import load_json
from vww.files import write_json
from vww.logs import setup_logging


def summarize(splits):
    """Per-split totals from {split: (annotations, shard reports)}.

    Raises ValueError if the shards do not cover the split exactly.
    """
    summary = {}
    for split, (annotations, reports) in sorted(splits.items()):
        shards = sorted(reports, key=lambda r: r["shard"])
        expected = list(range(shards[0]["num_shards"])) if shards else []
        if [r["shard"] for r in shards] != expected:
            raise ValueError(f"{split}: shard reports {[r['shard'] for r in shards]} "
                             f"do not form 0..{len(expected) - 1}")
        images = sum(r["images"] for r in shards)
        if images != len(annotations["images"]):
            raise ValueError(f"{split}: shards hold {images} images, annotations list "
                             f"{len(annotations['images'])}")
        summary[split] = {
            "images": images,
            "records": sum(r["records"] for r in shards),
            "records_by_label": {
                label: sum(r["records_by_label"][label] for r in shards) for label in ("0", "1")
            },
            "shards": len(shards),
            "reencoded": [item for r in shards for item in r["reencoded"]],
            "skipped": [item for r in shards for item in r["skipped"]],
        }
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", nargs="+", action="append", required=True,
                        metavar="SPLIT ANNOTATIONS REPORT",
                        help="a split's name, its VWW annotations JSON and its shard reports")
    parser.add_argument("--output", required=True, help="summary JSON to write")
    parser.add_argument("--log", help="log file (default: stderr)")
    args = parser.parse_args(argv)
    setup_logging(args.log)

    splits = {}
    for name, annotations, *reports in args.split:
        splits[name] = (load_json(annotations), [load_json(path) for path in reports])
    try:
        summary = summarize(splits)
    except ValueError as err:
        sys.exit(f"error: {err}")
    write_json(args.output, summary)
    for split, totals in summary.items():
        logging.info("%s: %d records (%s background, %s positive) from %d images; "
                     "%d re-encoded, %d skipped: %s", split, totals["records"],
                     totals["records_by_label"]["0"], totals["records_by_label"]["1"],
                     totals["images"], len(totals["reencoded"]), len(totals["skipped"]),
                     ", ".join(s["file_name"] for s in totals["skipped"]) or "none")


if __name__ == "__main__":
    main()
