#!/usr/bin/env python3
"""The training crop study's table: the TFLM guide's whole-image crop against the box-guided
one, over seeds, from the runs the workflow made (target crop_study, config crop_study).

Each run is a model folder (eval.json, tflite_eval.json and their per-image predictions).
It writes one Markdown table of each measure's mean and standard deviation (over the seeds,
ddof 1) per crop, and every run's figures with the table's numbers as JSON:
- float (the shipped weights), float (the other weight set), int8 and device accuracy on
  every val record;
- float-int8 agreement: the share of val images whose float and int8 decisions (both
  argmax, slim's evaluation preprocessing) agree;
- false positives and missed persons of the float model;
- the float model's recall by person size (share of the image of the largest person box).

Example (what the rule runs):
  python scripts/summarize_crop_study.py --run whole_image 0 results/crop_study.whole_image.seed0 \
      --run person_boxes 0 results/crop_study.person_boxes.seed0 ... \
      --output results/crop_study/study.json --table results/crop_study/study.md
"""

import statistics
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json, write_text
from vww.data.coco import load_json

MEASURES = ("float_accuracy", "float_raw_accuracy", "int8_accuracy", "device_accuracy",
            "float_int8_agreement", "false_positives", "missed_persons")
COUNTS = ("false_positives", "missed_persons")  # images, not shares


def figures(folder):
    """The measures of one run: the model folder the workflow made for it."""
    evaluation = load_json(folder / "eval.json")
    int8 = load_json(folder / "tflite_eval.json")
    float_predicted = load_json(folder / "predictions" / "eval.json")["predicted"]
    int8_predicted = load_json(folder / "predictions" / "tflite_eval.json")["predicted"]
    int8_predicted = int8_predicted["slim_eval"]
    other = "raw" if evaluation["weights"] == "ema" else "ema"
    (true_negatives, false_positives), (missed, _) = evaluation["confusion_matrix"]
    return {
        "float_accuracy": evaluation["accuracy"],
        "float_raw_accuracy": evaluation["by_weights"][other]["accuracy"],
        "int8_accuracy": int8["int8_accuracy"],
        "device_accuracy": int8["device_int8_accuracy"],
        "float_int8_agreement": sum(a == b for a, b in zip(float_predicted, int8_predicted,
                                                             strict=True))
        / len(float_predicted),
        "false_positives": false_positives,
        "missed_persons": missed,
        "negatives": true_negatives + false_positives,
        "recall_by_person_size": {bucket["bucket"]: bucket["recall"]
                                  for bucket in evaluation["recall_by_person_size"]},
    }


def spread(values):
    """(mean, standard deviation with ddof 1) of `values` (None values left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs):
    """{crop: {measure: (mean, std)}} of {crop: [figures per seed]}."""
    table = {}
    for crop, per_seed in runs.items():
        row = {measure: spread([run[measure] for run in per_seed]) for measure in MEASURES}
        buckets = sorted({b for run in per_seed for b in run["recall_by_person_size"]},
                         key=list(per_seed[0]["recall_by_person_size"]).index)
        for bucket in buckets:
            row[f"recall {bucket}"] = spread([run["recall_by_person_size"].get(bucket)
                                              for run in per_seed])
        table[crop] = row
    return table


def markdown(table, seeds):
    columns = list(next(iter(table.values())))
    lines = [f"| crop ({len(seeds)} seeds: mean ± sd) | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for crop, row in table.items():
        cells = []
        for column, (mean, sd) in row.items():
            digits = 1 if column in COUNTS else 3
            cells.append("n/a" if mean is None else f"{mean:.{digits}f} ± {sd:.{digits}f}")
        lines.append(f"| {crop} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--run", nargs=3, action="append", required=True,
                        metavar=("CROP", "SEED", "MODEL_DIR"),
                        help="one run: its crop, its seed and the model folder it made")
    parser.add_argument("--output", required=True, help="JSON of every run and the table")
    parser.add_argument("--table", required=True, help="the Markdown table to write")
    args = parse_logged_args(parser, argv)
    runs, seeds = {}, {}
    for crop, seed, folder in args.run:
        runs.setdefault(crop, []).append(figures(Path(folder)))
        seeds.setdefault(crop, []).append(int(seed))
    table = summarize(runs)
    write_json(args.output, {
        "seeds": seeds,
        "runs": {crop: dict(zip(map(str, seeds[crop]), per_seed))
                 for crop, per_seed in runs.items()},
        "mean_sd": table,
    })
    write_text(args.table, markdown(table, next(iter(seeds.values()))) + "\n")


if __name__ == "__main__":
    main_guard(main)
