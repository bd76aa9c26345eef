"""A weak model still gets its report (issue 26): a real 20-step training, which gives every
val image the same score and calls it "background", through the export chain as
rules/export.smk runs it, to the figures, model.json, the settings header and the summary."""

import json
import re

import numpy as np
import pytest

import describe_model
import summarize_model
import write_model_settings
from conftest import SHORT_MODEL, read_records, run, train
from evaluate_tflite import preprocessing_report
from plot_report import plot_confusion, plot_roc_pr
from test_export import SETTINGS
from vww.base.files import write_json
from vww.export.litert import input_int8, interpreter, invoke, io_quantization
from vww.model import metrics
from vww.model.dataset import eval_examples, record_files

STEPS = 20
FIGURES = ("training_curves.png", "confusion_matrix.png", "val_predictions.png", "roc_pr.png",
           "person_size.png", "layers.html")
MAX_FALSE_POSITIVE_RATE = 0.05
UNSURE_MARGIN = 0.1  # the sample config's
HEADER = "c/person_detect_model_data_settings.h"


def strict_json(path):
    """The JSON file at `path`, refusing NaN and Infinity (json.loads takes them)."""
    return json.loads(path.read_text(),
                      parse_constant=lambda name: pytest.fail(f"{path}: {name} is not JSON"))


def header_constants(path):
    return {name: int(value) for name, value in
            re.findall(r"constexpr int8_t (k\w+) = (-?\d+);", path.read_text())}


@pytest.fixture(scope="module")
def weak(sample_records, tmp_path_factory):
    """The 20-step model's folder: its checkpoint, .tflite and every report of the chain.

    Operating rule max_false_positive_rate: it takes a threshold above every image's score,
    where no image is predicted person and precision is undefined, as best_accuracy does on
    a val split of mostly negatives (the sample workflow's: the report_figures crash). On
    these records, 30 of 59 with a person, best_accuracy takes -128: every image a person."""
    records, _ = sample_records
    val = records["val"]
    out = tmp_path_factory.mktemp("weak")
    train(records, out / "train", STEPS)
    checkpoint = out / "train" / f"model.ckpt-{STEPS}"
    run("evaluate.py", "--checkpoint", checkpoint, "--records", *val,
        "--output", out / "eval.json", *SHORT_MODEL)
    run("export_inference_graph.py", "--output", out / "graph.pb", *SHORT_MODEL)
    run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", checkpoint,
        "--eval-weights", "ema", "--output", out / "frozen.pb")
    run("quantize.py", "--frozen-graph", out / "frozen.pb", "--records", *val,
        "--num-images", 50, "--output", out / "model.tflite")
    run("evaluate_tflite.py", "--tflite", out / "model.tflite", "--records", *val,
        "--float-eval", out / "eval.json", "--operating-rule", "max_false_positive_rate",
        "--max-false-positive-rate", MAX_FALSE_POSITIVE_RATE,
        "--unsure-margin", UNSURE_MARGIN, "--output", out / "tflite_eval.json")
    run("check_micro.py", "--tflite", out / "model.tflite", "--records", *val,
        "--num-images", 5, "--output", out / "micro_check.json")
    run("plot_report.py", "--train-dir", out / "train", "--eval", out / "eval.json",
        "--tflite-eval", out / "tflite_eval.json", "--micro-check", out / "micro_check.json",
        "--tflite", out / "model.tflite", "--records", *val, "--output-dir", out / "report")
    (out / "labels.txt").write_text("0:background\n1:person\n")
    describe_and_summarize(out, out / "tflite_eval.json", out)
    return out


def in_process(cli, *args):
    """Run a CLI's main() here: TensorFlow is loaded already, a new process takes seconds."""
    cli.main([str(arg) for arg in args])


def describe_and_summarize(out, tflite_eval, folder):
    """model.json, the settings header and summary.json into `folder`, as the rules make
    them, of the model in `out` with the report `tflite_eval`."""
    checkpoint = out / "train" / f"model.ckpt-{STEPS}"
    in_process(describe_model, "--labels", out / "labels.txt", "--tflite", out / "model.tflite",
               "--tflite-eval", tflite_eval, "--checkpoint", checkpoint, *SHORT_MODEL,
               "--output", folder / "model.json")
    in_process(write_model_settings, "--model-json", folder / "model.json",
               "--micro-check", out / "micro_check.json", "--output", folder / HEADER)
    in_process(summarize_model, "--model", "weak", "--eval", out / "eval.json",
               "--tflite-eval", tflite_eval, "--micro-check", out / "micro_check.json",
               "--tflite", out / "model.tflite", *SHORT_MODEL, "--output", folder / "summary.json")


@pytest.fixture(scope="module")
def val_truth(sample_records):
    """(labels, largest person box fraction) of each val record, read from the records."""
    records = read_records(sample_records[0]["val"])
    areas = [(r["image/object/bbox/ymax"] - r["image/object/bbox/ymin"])
             * (r["image/object/bbox/xmax"] - r["image/object/bbox/xmin"]) for r in records]
    return ([int(r["image/class/label"]) for r in records],
            [float(a.max()) if a.size else 0.0 for a in areas])


def int8_scores(tflite, val, kind):
    """[(background score, person score)] of each val image, run here one by one."""
    runner = interpreter(tflite.read_bytes())
    return [tuple(int(s) for s in invoke(runner, input_int8(runner, example.image)))
            for example in eval_examples(record_files(val, "val"), SETTINGS, kind=kind)]


def test_the_20_step_model_calls_every_image_background_and_gets_its_whole_report(
        weak, val_truth, sample_records):
    labels, largest = val_truth
    negatives, positives = labels.count(0), labels.count(1)
    report = strict_json(weak / "tflite_eval.json")
    float_eval = strict_json(weak / "eval.json")
    # One-sided: argmax says background for every image, in float and int8, both preprocessings.
    one_sided = [[negatives, 0], [positives, 0]]
    assert float_eval["confusion_matrix"] == report["confusion_matrix"] == one_sided
    assert float_eval["accuracy"] == report["int8_accuracy"] == negatives / len(labels)
    person_scores = {}
    for kind, got in report["by_preprocessing"].items():
        scores = int8_scores(weak / "model.tflite", sample_records[0]["val"], kind)
        assert all(person <= background for background, person in scores)
        assert got["confusion_matrix"] == one_sided and got["accuracy"] == negatives / len(labels)
        person = person_scores[kind] = [p for _, p in scores]
        # One score for every image: the ROC is the diagonal, the precision-recall curve the
        # one point (recall 1, the share of positives).
        assert len(set(person)) == 1
        assert got["roc_auc"] == 0.5
        assert got["average_precision"] == pytest.approx(positives / len(labels))
        # Precision is null exactly at the thresholds no image reaches, and says why.
        for threshold, precision in zip(got["curves"]["thresholds"], got["curves"]["precision"]):
            reached = [label for p, label in zip(person, labels) if p >= threshold]
            assert precision == (pytest.approx(sum(reached) / len(reached)) if reached
                                 else None), threshold
        assert "no image predicted positive" in got["curves"]["undefined"]["precision"]
        for bucket in got["recall_by_person_size"]:
            if bucket["bucket"] == "no person":
                members = [label for label in labels if not label]
            else:
                members = [label for label, box in zip(labels, largest) if label and
                           bucket["min_box_fraction"] <= box < bucket["max_box_fraction"]]
            assert bucket["images"] == len(members), bucket
            # Every image said background: right for the negatives, wrong for the rest.
            assert bucket["recall"] == (members.count(0) / len(members) if members else None)
            assert bucket.get("undefined") == (None if members else
                                               {"recall": "no image in this bucket"})
        assert {b["recall"] for b in got["recall_by_person_size"]} == {1.0, 0.0, None}

    # The operating point, on the device scores: the lowest threshold passing at most 5% of
    # the negatives is one no image reaches (the report_figures crash: no precision there);
    # with a band of 0.1 / (1/256) = 26 steps each side every image is unsure.
    person = person_scores["device"]
    threshold = min(t for t in range(-128, 128)
                    if sum(p >= t for p, label in zip(person, labels) if not label)
                    <= MAX_FALSE_POSITIVE_RATE * negatives)
    assert max(person) < threshold
    point = report["operating_point"]
    assert point["threshold"] == threshold
    at = report["by_preprocessing"]["device"]["curves"]["thresholds"].index(threshold)
    assert report["by_preprocessing"]["device"]["curves"]["precision"][at] is None
    assert (point["accuracy"], point["true_positive_rate"], point["false_positive_rate"]) == (
        negatives / len(labels), 0.0, 0.0)
    assert (point["unsure_low"], point["unsure_high"]) == (threshold - 26, threshold + 26)
    assert all(threshold - 26 <= p < threshold + 26 for p in person)
    assert point["unsure_fraction"] == 1.0 and point["accuracy_when_sure"] is None
    assert point["undefined"] == {"accuracy_when_sure": "every image is in the unsure band"}

    assert all((weak / "report" / name).stat().st_size > 0 for name in FIGURES)
    assert strict_json(weak / "micro_check.json")["mismatches"] == []
    assert strict_json(weak / "model.json")["operating_point"] == point
    summary = strict_json(weak / "summary.json")
    assert summary["operating_point"] == point
    assert summary["int8_accuracy"] == summary["float_accuracy"] == negatives / len(labels)
    assert header_constants(weak / HEADER) == {
        "kScoreThreshold": threshold, "kUnsureLow": threshold - 26, "kUnsureHigh": threshold + 26}
    assert "true positive rate 0.0000" in (weak / HEADER).read_text()


def test_an_operating_point_no_threshold_meets_leaves_the_argmax_and_says_why(
        weak, val_truth, tmp_path):
    """No real short training scores negatives 127, so this model's report is made from
    the scores of one that does: every image "person" at 127, whatever its label. No
    threshold passes at most 5% of the negatives: there is no operating point."""
    labels, largest = val_truth
    scores = np.tile(np.array([-128, 127], np.int8), (len(labels), 1))
    by_preprocessing = {kind: preprocessing_report(scores, np.array(labels), np.array(largest))
                        for kind in ("slim_eval", "device")}
    _, (out_scale, out_zero) = io_quantization(
        interpreter((weak / "model.tflite").read_bytes()))
    point = metrics.operating_point(labels, scores[:, 1], "max_false_positive_rate",
                                    MAX_FALSE_POSITIVE_RATE, UNSURE_MARGIN, (out_scale, out_zero))
    saturated = {**json.loads((weak / "tflite_eval.json").read_text()),
                 "confusion_matrix": by_preprocessing["slim_eval"]["confusion_matrix"],
                 "operating_point": {"preprocessing": "device", **point},
                 "by_preprocessing": by_preprocessing}
    write_json(tmp_path / "tflite_eval.json", saturated)
    report = strict_json(tmp_path / "tflite_eval.json")
    why = ("no int8 threshold has a false positive rate of at most 0.05: the lowest, at 127, "
           "is 1.0000")
    assert report["operating_point"]["threshold"] is None
    assert report["operating_point"]["undefined"]["threshold"] == why

    plot_roc_pr(report, tmp_path / "roc_pr.png")
    plot_confusion({"float (checkpoint)": strict_json(weak / "eval.json")["confusion_matrix"],
                    "int8 (.tflite)": report["confusion_matrix"]},
                   tmp_path / "confusion_matrix.png")
    assert (tmp_path / "roc_pr.png").stat().st_size > 0
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0

    describe_and_summarize(weak, tmp_path / "tflite_eval.json", tmp_path)
    description = strict_json(tmp_path / "model.json")
    assert "operating_point" not in description  # predict.py takes the argmax
    assert description["undefined"] == {"operating_point": why}
    argmax = min(t for t in range(-128, 128) if out_scale * (t - out_zero) > 0.5)
    assert header_constants(tmp_path / HEADER) == dict.fromkeys(
        ("kScoreThreshold", "kUnsureLow", "kUnsureHigh"), argmax)
    assert why in " ".join(line.removeprefix("// ") for line in
                           (tmp_path / HEADER).read_text().splitlines())
    assert strict_json(tmp_path / "summary.json")["operating_point"] == report["operating_point"]
