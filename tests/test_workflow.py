"""The workflow end to end on the sample: the reference run's dataset against pycocotools and
the instances, its models learning, its report, the same shards from a download, and old
outputs never mixed with new ones."""

import json
import math
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import (
    SAMPLE_RESULTS,
    SAMPLE_RUN_CONFIGS,
    copy_sample_run,
    read_records,
    run,
    run_sample,
    serve_folder,
    sha256,
    snakemake,
    write_yaml,
)
from test_records import KEYS, expected_boxes
from test_vww_labels import pycocotools_labels
from vww.data.coco import instances_path
from vww.sample.coco import write_sample_zips

pytestmark = pytest.mark.workflow

SAMPLE = SAMPLE_RESULTS
SAMPLE_COCO = f"{SAMPLE}/coco"
DATASET = f"{SAMPLE}/datasets/results_sample_coco-person-0.005-192px"
FACES = f"{SAMPLE}/datasets/results_sample_faces-no_face-face-192px"
SHARDS = {"train": 4, "val": 2}  # tests/sample_config.yaml's


def coco_dataset(workdir, results="results"):
    """The one COCO dataset folder under `results`/datasets."""
    found, = (workdir / results / "datasets").glob("*-person-0.005-192px")
    return found


def shard_digests(dataset):
    return {p.name: sha256(p) for p in sorted((dataset / "records").iterdir())}


@pytest.mark.parametrize("split", ["train", "val"])
def test_records_follow_the_tflm_guides_rule(sample_run, split):
    root = sample_run / SAMPLE_COCO
    summary = json.loads((sample_run / DATASET / "summary.json").read_text())[split]
    shards = sorted((sample_run / DATASET / "records").glob(f"{split}.record-*"))
    assert [p.name for p in shards] == [
        f"{split}.record-{i:05d}-of-{SHARDS[split]:05d}" for i in range(SHARDS[split])
    ]

    expected = pycocotools_labels(instances_path(root, split), "person", 0.005)
    boxes = expected_boxes(instances_path(root, split))
    images = json.loads(instances_path(root, split).read_text())["images"]
    names = {image["id"]: image["file_name"] for image in images}
    skipped = {item["file_name"] for item in summary["skipped"]}
    assert skipped, "the sample has an unreadable image in every split"

    examples = read_records(shards)
    assert len(examples) == len(images) - len(skipped) == summary["records"]
    by_name = {ex["image/filename"].decode(): ex for ex in examples}
    assert len(by_name) == len(examples)  # every image in exactly one shard
    assert set(by_name) == set(names.values()) - skipped
    for image_id, name in names.items():
        if name in by_name:
            example = by_name[name]
            assert example["image/class/label"] == expected[image_id], name
            assert example["image/source_id"] == str(image_id).encode()
            decoded = tf.io.decode_jpeg(example["image/encoded"], channels=3)
            assert decoded.shape[:2] == (example["image/height"], example["image/width"])
            for key in KEYS:  # at the stored size (192 px), as annotated
                assert (example[f"image/object/bbox/{key}"] == boxes[name][key]).all(), name
            assert (len(boxes[name]["xmin"]) > 0) == bool(expected[image_id])
    reencoded = {item["reason"] for item in summary["reencoded"]}
    assert {"CMYK JPEG", "PNG data, not JPEG"} <= reencoded
    assert (sample_run / DATASET / "labels.txt").read_text() == "0:background\n1:person\n"


def test_rerun_has_nothing_to_do(sample_run):
    result = snakemake(sample_run.folder, "-n", "--configfile", *SAMPLE_RUN_CONFIGS)
    assert "Nothing to be done" in result.stdout


def test_download_builds_the_same_bytes(sample_run, tmp_path, workdir):
    """The reference run's COCO zipped as COCO serves it, from 127.0.0.1: the dataset target
    downloads, checks, extracts and builds the reference run's shards, byte for byte."""
    served = tmp_path / "served"
    md5s = write_sample_zips(sample_run / SAMPLE_COCO, served / "zips")
    (served / "annotations").mkdir()
    (served / "zips" / "annotations_trainval2014.zip").rename(
        served / "annotations" / "annotations_trainval2014.zip")
    md5_yaml = "".join(f"  {name}: {md5}\n" for name, md5 in md5s.items())
    shards = f"dataset: {{train_shards: {SHARDS['train']}, val_shards: {SHARDS['val']}}}\n"
    with serve_folder(served) as url:
        override = write_yaml(workdir / "download.yaml", shards + f"coco_url: {url}\n"
                              f"coco_dir: data/coco\nkeep_zips: false\ncoco_md5:\n{md5_yaml}")
        snakemake(workdir, "dataset", "--configfile", override)
        assert (shard_digests(coco_dataset(workdir))
                == shard_digests(sample_run / DATASET))
        assert not list((workdir / "data" / "coco_zips").glob("*.zip"))  # keep_zips: false
        assert sorted(p.name for p in (workdir / "data" / "coco").iterdir()) == [
            "annotations", "train2014", "val2014"]
        log = (workdir / "results/logs/download/val2014.zip.log").read_text()
        assert "MB" in log
        # Another mirror of the same zips (same md5s) or other limits redo nothing, although
        # the zips are gone: the URL and the limits say how to download, not what.
        mirror = write_yaml(workdir / "mirror.yaml",
                            f"coco_url: {url.replace('127.0.0.1', 'localhost')}\n"
                            "download_limits: {min_rate_kib_s: 1}\n")
        rerun = snakemake(workdir, "-n", "dataset", "--configfile", override, mirror)
    assert "Nothing to be done" in rerun.stdout, rerun.stdout


def test_wrong_md5_fails_and_leaves_nothing(sample_coco, coco_server, workdir):
    override = write_yaml(workdir / "bad.yaml", f"coco_url: {coco_server}\n"
                          "coco_md5: {annotations_trainval2014.zip: " + "0" * 32 + "}\n")
    result = snakemake(workdir, "--configfile", override, "--",
                       "data/coco_zips/annotations_trainval2014.zip", check=False)
    assert result.returncode != 0
    assert "coco_md5" in result.stdout
    assert not [p for p in (workdir / "data").rglob("*") if p.is_file()]


def test_stage_report_counts_every_rule_that_ran(sample_run):
    """report_stages.py on the reference run: every rule that ran a job has its benchmarks;
    jobs and disk of the shard rule agree with the files in the dataset folders."""
    printed = snakemake(sample_run.folder, "--detailed-summary", "--configfile",
                        *SAMPLE_RUN_CONFIGS).stdout
    # The table's lines (header first) among Snakemake's messages.
    table = [line for line in printed.splitlines() if line.count("\t") >= 7]
    outputs = sample_run.folder.parent / "outputs.tsv"
    outputs.write_text("\n".join(table) + "\n")
    result = run("report_stages.py", "--benchmarks", f"{SAMPLE}/benchmarks",
                 "--outputs", outputs, cwd=sample_run.folder)
    rows = {cells[0]: cells[1:] for line in result.stdout.splitlines()[2:]
            for cells in [[cell.strip() for cell in line.strip("|").split("|")]]}
    ran = {line.split("\t")[2] for line in table[1:]}
    assert set(rows) - {"all rules"} == ran
    shard_files = sorted((sample_run / SAMPLE / "datasets").glob("*/re*/*-of-000*"))
    assert int(rows["tfrecord_shard"][0]) == len(shard_files) // 2 == 4 + 2 + 4 + 2
    kilobytes = sum(path.stat().st_size for path in shard_files) / 1000
    assert rows["tfrecord_shard"][-1] == f"{kilobytes / 1000:,.1f} MB"


def test_the_sample_learns_and_reports(sample_run):
    """The reference run (the sample with the folder model fine-tuned from the person
    model): what it lists, learns and reports."""
    workdir = sample_run.folder
    listed = [line.split("  ", 1)[1] for line in sample_run.manifest().splitlines()]
    for kind in ("records/train.record-00000-of-00004", "model.ckpt-300.index",
                 "frozen_graph.pb", "person_detection.tflite", "person_detect_model_data.cc",
                 "person_detect_model_data_settings.h",
                 "face-192px/records/val.record-00001-of-00002", "face_detection.tflite",
                 "face_detection/eval_init.json", "face_detect_model_data.cc"):
        assert any(path.endswith(kind) for path in listed), kind
    summary = json.loads((workdir / DATASET / "summary.json").read_text())
    assert summary["train"]["records_by_label"]["1"] > 0
    assert summary["val"]["records_by_label"]["0"] > 0

    report = json.loads((workdir / SAMPLE / "person_detection/eval.json").read_text())
    assert report["step"] == 300 and report["images"] == summary["val"]["records"]
    assert report["accuracy"] >= report["majority_class_rate"] + 0.2, report
    log = (workdir / SAMPLE / "logs/person_detection/train-300.log").read_text()
    assert "step 300/300" in log

    model = json.loads((workdir / SAMPLE / "person_detection/summary.json").read_text())
    assert model["float_accuracy"] == report["accuracy"]
    assert model["int8_accuracy"] >= report["majority_class_rate"] + 0.2
    assert model["tflm_litert_mismatches"] == 0
    assert model["tflm_litert_images_compared"] == summary["val"]["records"]
    assert model["trainable_parameters"] == 213_442 and model["tflite_parameters"] == 210_706
    assert model["macs"] == 7_157_888 and model["op_count"] == 31
    assert model["arena_bytes"] > 0 and model["tflite_bytes"] > 250_000
    for path in model["artifacts"].values():
        assert (workdir / path).is_file(), path
    c_source = workdir / SAMPLE / "person_detection/c/person_detect_model_data.cc"
    assert model["artifacts"]["c_source"] == str(c_source.relative_to(workdir))
    for figure in ("training_curves", "confusion_matrix", "val_predictions", "roc_pr",
                   "person_size"):
        assert (workdir / SAMPLE / f"person_detection/report/{figure}.png").stat().st_size > 1000
    layers_page = (workdir / SAMPLE / "person_detection/report/layers.html").read_text()
    assert layers_page.count("<tr>") == 1 + model["op_count"] + 1  # header, ops, total
    assert sum(layer["macs"] for layer in model["layers"]) == model["macs"]
    assert f"<td>total</td><td></td><td>{model['macs']:,}</td>" in layers_page

    # The operating point: chosen by evaluate_tflite, carried by model.json and the header.
    tflite_eval = json.loads((workdir / SAMPLE / "person_detection/tflite_eval.json").read_text())
    point = tflite_eval["operating_point"]
    assert model["operating_point"] == point and point["rule"] == "best_accuracy"
    assert model["roc_auc"] == tflite_eval["by_preprocessing"]["device"]["roc_auc"] > 0.9
    settings_header = (workdir / SAMPLE / "person_detection/c/"
                       "person_detect_model_data_settings.h").read_text()
    assert f"constexpr int8_t kScoreThreshold = {point['threshold']};" in settings_header

    # model.json: predict takes the model alone; its .tflite and final checkpoint agree.
    model_dir = workdir / SAMPLE / "person_detection"
    description = json.loads((model_dir / "model.json").read_text())
    assert description["class_names"] == ["background", "person"]
    assert description["max_image_side"] == 192
    assert description["checkpoint"] == "train/model.ckpt-300"
    labels = []
    assert description["operating_point"] == point
    for model in (model_dir / "person_detection.tflite", model_dir / "train"):
        result = run("predict.py", model, workdir / SAMPLE / "coco/val2014", "--argmax",
                     "--preprocessing", "slim_eval", check=False)
        labels.append([line.split("\t")[:2] for line in result.stdout.splitlines()])
    assert len(labels[0]) == summary["val"]["records"] and labels[0] == labels[1]

    # The folder model: 160 train and 40 val photos, fine-tuned from the person model.
    faces = json.loads((workdir / FACES / "summary.json").read_text())
    assert [faces[split]["records"] for split in ("train", "val")] == [160, 40]
    assert (workdir / FACES / "labels.txt").read_text() == "0:no_face\n1:face\n"
    tuned = json.loads((workdir / SAMPLE / "face_detection/summary.json").read_text())
    before = json.loads((workdir / SAMPLE / "face_detection/eval_init.json").read_text())
    assert before["images"] == tuned["val_images"] == 40
    assert tuned["fine_tuning"]["accuracy_before"] == before["accuracy"]
    assert tuned["fine_tuning"]["accuracy_after"] == tuned["float_accuracy"] >= 0.75, tuned
    assert tuned["int8_accuracy"] >= 0.75 and tuned["tflm_litert_mismatches"] == 0
    log = (workdir / SAMPLE / "logs/face_detection/train-300.log").read_text()
    assert f"from {SAMPLE}/person_detection/train/model.ckpt-300 (ema weights)" in log


def test_changed_shards_or_source_never_mix_with_old_outputs(sample_coco, tmp_path, workdir):
    """Over an existing results folder: another val shard count is evaluated on exactly its
    shards; another COCO copy gets its own dataset folder, and training refuses to resume
    the old copy's run."""
    root, _, _ = sample_coco
    # A checkpoint at every step: Snakemake deletes the final one before a rerun, and the
    # others stay for train.py to find.
    quick = ("models: {person_detection: {steps: 20, batch_size: 32, log_interval_steps: 10,"
             " checkpoint_interval_s: 0, batch_norm_decay: 0.9,"
             " moving_average_decay: 0.99}}\n")

    def evaluate(coco_dir, val_shards):
        config = write_yaml(workdir / "config.yaml.test", quick + "dataset: {train_shards: 2,"
                            f" val_shards: {val_shards}}}\ncoco_dir: {coco_dir}\n"
                            "download: false\n")
        return snakemake(workdir, "--configfile", config, "--", "evaluate", check=False)

    assert evaluate(root, 2).returncode == 0
    assert evaluate(root, 3).returncode == 0
    dataset = coco_dataset(workdir)
    assert len(list((dataset / "records").glob("val.record-*"))) == 5  # old shards remain
    summary = json.loads((dataset / "summary.json").read_text())
    report = json.loads((workdir / "results/person_detection/eval.json").read_text())
    assert report["images"] == summary["val"]["records"] == len(read_records(
        sorted((dataset / "records").glob("val.record-*-of-00003"))))

    other = tmp_path / "other_coco"
    shutil.copytree(root, other)
    (other / "train2014" / sorted(p.name for p in (root / "train2014").iterdir())[0]).unlink()
    refused = evaluate(other, 3)
    assert refused.returncode != 0
    datasets = sorted((workdir / "results/datasets").iterdir())
    assert len(datasets) == 2 and dataset in datasets
    assert any(p.name.endswith("_other_coco-person-0.005-192px") for p in datasets)
    refusal = ("error: results/person_detection/train/model.ckpt-19: made with other data or "
               "recipe (train records: 2 shards from train.record-00000-of-00002")
    assert refusal in refused.stdout
    # The failed job's own log holds its error (its stderr goes there).
    log = (workdir / "results/logs/person_detection/train-20.log").read_text().splitlines()
    assert log[-1].startswith(refusal)


def test_train_takes_the_runs_cores_and_the_memory_of_its_image_cache(sample_run, tmp_path):
    """Dry runs plan training (and evaluation) with every core of --cores, and the train
    job's mem_mb with its decoded images (cache_images auto), from the built dataset."""
    train_records = read_records(sorted((sample_run / DATASET / "records").glob("train.*")))
    decoded = sum(int(ex["image/height"]) * int(ex["image/width"]) * 3 for ex in train_records)
    # A recipe key changed: training and evaluation are planned again.
    again = write_yaml(tmp_path / "again.yaml",
                       "models: {person_detection: {learning_rate: 0.04}}\n")
    for cores in (2, 16):
        dry = snakemake(sample_run.folder, "-n", "evaluate", "--cores", str(cores),
                        "--configfile", *SAMPLE_RUN_CONFIGS, again).stdout
        # The person model's jobs (the face model's are planned too: it starts from it).
        jobs = {block.split(":", 1)[0]: block for block in dry.split("\nrule ")[1:]
                if "wildcards: model=person_detection" in block}
        for rule in ("train", "evaluate_checkpoint"):
            assert f"\n    threads: {cores}\n" in jobs[rule], jobs[rule]
        assert f"mem_mb={3000 + math.ceil(decoded * 1.1 / 2**20)}," in jobs["train"]


def test_the_crop_study_tables_its_runs(sample_run, tmp_path):
    """The crop study through Snakemake, in a copy of the reference run (its dataset kept):
    each crop and seed a model trained and exported by the workflow's rules, outside `all`;
    the table's figures against numpy's over the runs' own reports."""
    workdir = copy_sample_run(sample_run, tmp_path / "work")
    study = write_yaml(tmp_path / "study.yaml", "crop_study: {model: person_detection, "
                       "seeds: [0, 1]}\nmodels: {person_detection: {steps: 20, "
                       "calibration_images: 20}}\n")
    output = run_sample(workdir, "crop_study", configs=[study]).stdout
    assert "rule tfrecord_shard:" not in output and "rule c_source:" not in output
    result = json.loads((workdir / SAMPLE / "crop_study/study.json").read_text())
    table = (workdir / SAMPLE / "crop_study/study.md").read_text().splitlines()
    assert len(table) == 2 + 2  # header, rule, one row per crop
    for crop, row in zip(("whole_image", "person_boxes"), table[2:], strict=True):
        runs = [workdir / SAMPLE / f"crop_study.{crop}.seed{seed}" for seed in (0, 1)]
        evals = [json.loads((run / "eval.json").read_text()) for run in runs]
        int8 = [json.loads((run / "tflite_eval.json").read_text()) for run in runs]
        agreement = [np.mean(np.array(json.loads((run / "predictions/eval.json").read_text())
                                      ["predicted"])
                             == json.loads((run / "predictions/tflite_eval.json").read_text())
                             ["predicted"]["slim_eval"]) for run in runs]
        assert [e["step"] for e in evals] == [20, 20]
        expected = {"float_accuracy": [e["accuracy"] for e in evals],
                    "float_raw_accuracy": [e["by_weights"]["raw"]["accuracy"] for e in evals],
                    "int8_accuracy": [r["int8_accuracy"] for r in int8],
                    "float_int8_agreement": agreement,
                    "false_positives": [e["confusion_matrix"][0][1] for e in evals]}
        for measure, values in expected.items():
            mean, sd = result["mean_sd"][crop][measure]
            assert mean == pytest.approx(np.mean(values)), (crop, measure)
            assert sd == pytest.approx(np.std(values, ddof=1)), (crop, measure)
        assert row.startswith(f"| {crop} | ")
        mean, sd = result["mean_sd"][crop]["float_accuracy"]
        assert f"| {mean:.3f} ± {sd:.3f} |" in row
    # Each run trained with its crop and seed.
    for crop in ("whole_image", "person_boxes"):
        for seed in (0, 1):
            record = json.loads((workdir / SAMPLE / f"crop_study.{crop}.seed{seed}/train/"
                                 "run.json").read_text())
            assert (record["recipe"]["crop"], record["recipe"]["seed"]) == (crop, seed)
