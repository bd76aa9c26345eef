#!/usr/bin/env python3
"""Study the training crop: the seed's whole-image crop against the box-guided one, over
seeds, on the same records.

For each --crops setting and each --seeds value it trains a model with the recipe flags
given (the same steps and decays for every run), then runs the workflow's own CLIs on it:
evaluate.py (float, the shipped EMA weights and the raw ones), export, freeze, quantize
and evaluate_tflite.py (int8 under slim's evaluation preprocessing and the device's).
Every run has its folder under --output-dir, and a finished step is not redone, so an
interrupted study resumes. It prints one Markdown table of each measure's mean and
standard deviation (over the seeds, ddof 1) per crop and writes every run's figures and the
table's numbers to <output-dir>/study.json:
- float (EMA), float (raw), int8 and device accuracy on every val record;
- float-int8 agreement: the share of val images whose float (EMA) and int8 decisions (both
  argmax, slim's evaluation preprocessing) agree;
- false positives and missed persons of the float model (EMA);
- the float model's recall by person size (share of the image of the largest person box).

Example (the issue's setting: 1,500 steps, batch-norm decay 0.99):
  python scripts/study_crop.py --train-records train.record-* --val-records val.record-* \\
      --dataset-summary summary.json --output-dir crop_study --seeds 0 1 2 3 \\
      --steps 1500 --batch-norm-decay 0.99 --moving-average-decay 0.99
"""

import statistics
import subprocess
import sys
from pathlib import Path

import vww.arithmetic  # noqa: F401  (first: see vww/arithmetic.py)

from vww import recipe
from vww.cli import cli_parser, main_guard, parse_logged_args
from vww.coco import load_json
from vww.files import write_json

SCRIPTS = Path(__file__).resolve().parent
# Images the converter calibrates on (config.yaml's calibration_images).
CALIBRATION_IMAGES = 250
MEASURES = ("float_accuracy", "float_raw_accuracy", "int8_accuracy", "device_accuracy",
            "float_int8_agreement", "false_positives", "missed_persons")
COUNTS = ("false_positives", "missed_persons")  # images, not shares


def run_cli(script, *args, log):
    """Run scripts/<script> with this interpreter, its output appended to `log`."""
    with open(log, "a", encoding="utf-8") as out:
        subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], check=True,
                       stdout=out, stderr=subprocess.STDOUT)


def one_run(folder, settings, train_records, val_records, summary):
    """Train and evaluate one setting in `folder` (steps already done are kept); return
    its figures."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "study.log"
    train_flags = recipe.as_flags(settings).split()
    model_flags = recipe.as_flags(settings, recipe.INFERENCE_KEYS).split()
    checkpoint = folder / "train" / f"model.ckpt-{settings['steps']}"
    steps = [
        (f"{checkpoint}.index", "train.py",
         ["--records", *train_records, "--dataset-summary", summary,
          "--train-dir", folder / "train", *train_flags]),
        (folder / "eval.json", "evaluate.py",
         ["--checkpoint", checkpoint, "--records", *val_records, *model_flags,
          "--predictions", folder / "float_predictions.json", "--output", folder / "eval.json"]),
        (folder / "graph.pb", "export_inference_graph.py",
         [*model_flags, "--output", folder / "graph.pb"]),
        (folder / "frozen.pb", "freeze_graph.py",
         ["--graph", folder / "graph.pb", "--checkpoint", checkpoint,
          "--eval-weights", settings["eval_weights"], "--output", folder / "frozen.pb"]),
        (folder / "model.tflite", "quantize.py",
         ["--frozen-graph", folder / "frozen.pb", "--records", *val_records,
          "--num-images", CALIBRATION_IMAGES, "--output", folder / "model.tflite"]),
        (folder / "tflite_eval.json", "evaluate_tflite.py",
         ["--tflite", folder / "model.tflite", "--records", *val_records,
          "--float-eval", folder / "eval.json",
          "--predictions", folder / "int8_predictions.json",
          "--output", folder / "tflite_eval.json"]),
    ]
    for output, script, args in steps:
        if not Path(output).exists():
            run_cli(script, *args, log=log)
    return figures(folder, settings["eval_weights"])


def figures(folder, eval_weights):
    """The measures of one finished run folder."""
    evaluation = load_json(folder / "eval.json")
    int8 = load_json(folder / "tflite_eval.json")
    float_predicted = load_json(folder / "float_predictions.json")["predicted"]
    int8_predicted = load_json(folder / "int8_predictions.json")["predicted"]["slim_eval"]
    other = "raw" if eval_weights == "ema" else "ema"
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
    parser.add_argument("--train-records", nargs="+", required=True, metavar="SHARD")
    parser.add_argument("--val-records", nargs="+", required=True, metavar="SHARD")
    parser.add_argument("--dataset-summary", required=True,
                        help="the dataset's summary.json (train record count, shard sha256)")
    parser.add_argument("--output-dir", required=True, help="one folder per run, study.json")
    parser.add_argument("--crops", nargs="+", choices=recipe.CHOICES["crop"],
                        default=list(recipe.CHOICES["crop"]), help="settings compared (both)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3],
                        help="seeds per setting (%(default)s)")
    recipe.add_arguments(parser)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args)
    output_dir = Path(args.output_dir)
    runs = {crop: [one_run(output_dir / f"{crop}-seed{seed}",
                           {**settings, "crop": crop, "seed": seed}, args.train_records,
                           args.val_records, args.dataset_summary)
                   for seed in args.seeds]
            for crop in args.crops}
    table = summarize(runs)
    write_json(output_dir / "study.json", {
        "settings": {key: value for key, value in settings.items()
                     if key not in ("crop", "seed")},
        "seeds": args.seeds,
        "runs": {crop: dict(zip(map(str, args.seeds), per_seed))
                 for crop, per_seed in runs.items()},
        "mean_sd": table,
    })
    print(markdown(table, args.seeds))


if __name__ == "__main__":
    main_guard(main)
