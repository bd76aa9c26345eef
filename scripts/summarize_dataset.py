#!/usr/bin/env python3
"""Summarize the TFRecord shards of a VWW dataset from their per-shard reports, and fail
the dataset stage when the dataset is not fit to train on.

Checks that the shards of each split together cover every image of the split exactly once
(records + skipped = images in the annotations) and writes, per split: record counts per
label, the bytes its images take decoded (what training's image cache holds), each shard's
sha256, the re-encoded images and every skipped image with its reason. It fails, naming the
split and the reasons, when a split has no record, or when more than
--max-skipped-fraction of its images could not be read (COCO loses a handful of images;
more means a broken copy), so the error comes now and not after days of training. Images
whose bytes are stored in two splits (a copy or a link of a train image among the val
images) are listed by name and fail it too, unless --allow-duplicates.

Example:
  python scripts/summarize_dataset.py --split train vww_train.json reports/train-*.json \\
      --split val vww_val.json reports/val-*.json --output summary.json
"""

import logging
import sys
from collections import Counter
from itertools import combinations

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.data.coco import load_json

DEFAULT_MAX_SKIPPED_FRACTION = 0.02  # config.yaml's dataset.max_skipped_fraction
_LISTED = 5  # names shown in an error; the summary lists them all


class DatasetError(ValueError):
    """The shards are incomplete, or the dataset is not fit to train on."""


def _split_totals(split, annotations, reports):
    shards = sorted(reports, key=lambda r: r["shard"])
    expected = list(range(shards[0]["num_shards"])) if shards else []
    if [r["shard"] for r in shards] != expected:
        raise DatasetError(f"{split}: shard reports {[r['shard'] for r in shards]} "
                           f"do not form 0..{len(expected) - 1}")
    images = sum(r["images"] for r in shards)
    if images != len(annotations["images"]):
        raise DatasetError(f"{split}: shards hold {images} images, annotations list "
                           f"{len(annotations['images'])}")
    return {
        "images": images,
        "records": sum(r["records"] for r in shards),
        "records_by_label": {
            label: sum(r["records_by_label"][label] for r in shards) for label in ("0", "1")
        },
        "decoded_bytes": sum(r["decoded_bytes"] for r in shards),
        "shards": len(shards),
        # Training checks its shards against these before its first step.
        "shard_sha256": {r["output"]: r["sha256"] for r in shards},
        "reencoded": [item for r in shards for item in r["reencoded"]],
        "skipped": [item for r in shards for item in r["skipped"]],
    }


def check_readable(split, totals, max_skipped_fraction):
    """DatasetError naming the split and the reasons when too few of its images were read."""
    skipped = totals["skipped"]
    if totals["records"] and len(skipped) <= max_skipped_fraction * totals["images"]:
        return
    reasons = Counter(item["reason"] for item in skipped).most_common(3)
    why = "; ".join(f"{count} x {reason}" for reason, count in reasons)
    if not totals["records"]:
        raise DatasetError(f"{split}: no record: none of its {totals['images']} images could "
                           f"be read" + (f" ({why})" if why else ""))
    raise DatasetError(
        f"{split}: {len(skipped)} of {totals['images']} images could not be read "
        f"({len(skipped) / totals['images']:.1%}, more than dataset.max_skipped_fraction = "
        f"{max_skipped_fraction:g}): {why}; first: "
        + ", ".join(item["file_name"] for item in skipped[:_LISTED]))


def duplicates(reports_by_split):
    """[(split a, name in a, split b, name in b)] of the images stored in two splits with
    the same source bytes."""
    names = {split: {} for split in reports_by_split}
    for split, reports in reports_by_split.items():
        for report in reports:
            for name, digest in report["source_sha256"].items():
                names[split].setdefault(digest, name)
    found = []
    for a, b in combinations(sorted(names), 2):
        for digest in sorted(names[a].keys() & names[b].keys(), key=names[a].get):
            found.append((a, names[a][digest], b, names[b][digest]))
    return found


def summarize(splits, max_skipped_fraction=DEFAULT_MAX_SKIPPED_FRACTION,
              allow_duplicates=False):
    """Per-split totals from {split: (annotations, shard reports)}.

    Raises DatasetError if the shards do not cover the split exactly or the dataset is not
    fit to train on (see the module's doc).
    """
    summary = {}
    for split, (annotations, reports) in sorted(splits.items()):
        summary[split] = _split_totals(split, annotations, reports)
        check_readable(split, summary[split], max_skipped_fraction)
    same = duplicates({split: reports for split, (_, reports) in splits.items()})
    if same and not allow_duplicates:
        raise DatasetError(
            f"{len(same)} images are stored in two splits with the same bytes, so "
            "evaluation would score images the model trained on: "
            + ", ".join(f"{a}/{name_a} = {b}/{name_b}" for a, name_a, b, name_b in same[:_LISTED])
            + ("" if len(same) <= _LISTED else ", ...")
            + "; remove them from one split, or set dataset.allow_duplicates: true")
    for a, name_a, b, name_b in same:
        summary[b].setdefault(f"duplicates_of_{a}", []).append(
            {"file_name": name_b, f"{a}_file_name": name_a})
    return summary


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--split", nargs="+", action="append", required=True,
                        metavar="SPLIT ANNOTATIONS REPORT",
                        help="a split's name, its VWW annotations JSON and its shard reports")
    parser.add_argument("--max-skipped-fraction", type=float,
                        default=DEFAULT_MAX_SKIPPED_FRACTION,
                        help="largest share of a split's images that may be unreadable "
                             "(%(default)s)")
    parser.add_argument("--allow-duplicates", action="store_true",
                        help="keep images whose bytes are stored in two splits (listed in "
                             "the summary) instead of failing")
    parser.add_argument("--output", required=True, help="summary JSON to write")
    args = parse_logged_args(parser, argv)

    splits = {}
    for name, annotations, *reports in args.split:
        splits[name] = (load_json(annotations), [load_json(path) for path in reports])
    try:
        summary = summarize(splits, args.max_skipped_fraction, args.allow_duplicates)
    except DatasetError as err:
        sys.exit(f"error: {err}")
    write_json(args.output, summary)
    for split, totals in summary.items():
        logging.info("%s: %d records (%s background, %s positive) from %d images; "
                     "%d re-encoded, %d skipped: %s", split, totals["records"],
                     totals["records_by_label"]["0"], totals["records_by_label"]["1"],
                     totals["images"], len(totals["reencoded"]), len(totals["skipped"]),
                     ", ".join(s["file_name"] for s in totals["skipped"]) or "none")
        for key in sorted(k for k in totals if k.startswith("duplicates_of_")):
            logging.warning("%s: %d images with the bytes of a %s image (allowed): %s", split,
                            len(totals[key]), key.removeprefix("duplicates_of_"),
                            ", ".join(d["file_name"] for d in totals[key]))


if __name__ == "__main__":
    main_guard(main)
