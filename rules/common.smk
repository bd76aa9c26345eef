# Helpers shared by the rules: paths, per-model settings, checks of the COCO source.

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from vww.recipe import INFERENCE_KEYS, INPUT_KEYS, as_flags

SPLITS = ("train", "val")
ANNOTATIONS_ZIP = "annotations_trainval2014.zip"
# Where each zip lives under coco_url.
ZIP_URL_PATHS = {
    **{f"{split}2014.zip": f"zips/{split}2014.zip" for split in SPLITS},
    ANNOTATIONS_ZIP: f"annotations/{ANNOTATIONS_ZIP}",
}
COCO_DIR = config["coco_dir"]
ZIP_DIR = config["zip_dir"]
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"


wildcard_constraints:
    split="|".join(SPLITS),
    shard=r"\d{5}",
    num_shards=r"\d{5}",
    dataset=r"[^/]+",
    model="|".join(re.escape(name) for name in config["models"]),
    steps=r"\d+",
    zip_name="|".join(re.escape(name) for name in ZIP_URL_PATHS),


def coco_images_dir(split):
    return f"{COCO_DIR}/{split}2014"


def coco_instances(split):
    return f"{COCO_DIR}/annotations/instances_{split}2014.json"


def zip_url(wildcards):
    return f"{config['coco_url'].rstrip('/')}/{ZIP_URL_PATHS[wildcards.zip_name]}"


def zip_md5(wildcards):
    return config["coco_md5"][wildcards.zip_name]


def downloaded_zip(path):
    """Keep the zips read-only, or let Snakemake delete them after extraction."""
    return protected(path) if config["keep_zips"] else temp(path)


def dataset_id(model):
    """TFRecords are shared by every model with the same category and threshold."""
    settings = config["models"][model]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", settings["category"]).strip("_")
    return f"{slug}-{settings['area_threshold']}"


MODELS = sorted(config["models"])
DATASETS = {
    dataset_id(model): {
        "category": settings["category"],
        "area_threshold": settings["area_threshold"],
    }
    for model, settings in config["models"].items()
}


def dataset_dir(dataset):
    return f"{RESULTS}/datasets/{dataset}"


def num_shards(split):
    return config["dataset"][f"{split}_shards"]


def shard_records(dataset, split):
    n = num_shards(split)
    return [
        f"{dataset_dir(dataset)}/records/{split}.record-{shard:05d}-of-{n:05d}"
        for shard in range(n)
    ]


def shard_reports(dataset, split):
    n = num_shards(split)
    return [
        f"{dataset_dir(dataset)}/reports/{split}-{shard:05d}-of-{n:05d}.json"
        for shard in range(n)
    ]


def dataset_outputs(dataset):
    return [
        *shard_records(dataset, "train"),
        *shard_records(dataset, "val"),
        f"{dataset_dir(dataset)}/labels.txt",
        f"{dataset_dir(dataset)}/summary.json",
    ]


def final_checkpoint(model):
    """The .index file of the checkpoint a model's training ends with."""
    steps = config["models"][model]["steps"]
    return f"{RESULTS}/{model}/train/model.ckpt-{steps}.index"


def c_names(model):
    """(file name stem, array name) of a model's C source; default from the model name."""
    settings = config["models"][model]
    stem = re.sub(r"\W", "_", model)
    return (settings.get("c_file_name", f"{stem}_model_data"),
            settings.get("c_array_name", f"g_{stem}_model_data"))


def c_source_path(model, suffix):
    return f"{RESULTS}/{model}/c/{c_names(model)[0]}{suffix}"


def model_outputs(model):
    """Everything `all` builds for a model."""
    return [
        f"{RESULTS}/{model}/summary.json",
        c_source_path(model, ".cc"),
        c_source_path(model, ".h"),
        f"{RESULTS}/{model}/report/training_curves.png",
        f"{RESULTS}/{model}/report/confusion_matrix.png",
        f"{RESULTS}/{model}/report/val_predictions.png",
    ]


def manifest_inputs():
    """Every artifact whose bytes a build promises to reproduce (figures aside)."""
    paths = []
    for dataset in sorted(DATASETS):
        paths += dataset_outputs(dataset)
        paths += [f"{dataset_dir(dataset)}/annotations/{split}.json" for split in SPLITS]
    for model in MODELS:
        index = final_checkpoint(model)
        paths += [index, index.replace(".index", ".data-00000-of-00001")]
        paths += [f"{RESULTS}/{model}/{name}" for name in (
            "export/inference_graph.pb", "export/frozen_graph.pb", f"{model}.tflite",
            "eval.json", "tflite_eval.json", "micro_check.json", "summary.json")]
        paths += [c_source_path(model, ".cc"), c_source_path(model, ".h")]
    return paths


# Input and params functions of the rules.


def model_train_records(wildcards):
    return shard_records(dataset_id(wildcards.model), "train")


def model_val_records(wildcards):
    return shard_records(dataset_id(wildcards.model), "val")


def model_dataset_summary(wildcards):
    return f"{dataset_dir(dataset_id(wildcards.model))}/summary.json"


def model_records_dir(wildcards):
    return f"{dataset_dir(dataset_id(wildcards.model))}/records"


def model_final_checkpoint(wildcards):
    return final_checkpoint(wildcards.model)


def checkpoint_prefix(wildcards, input):
    return input.index.removesuffix(".index")


def model_recipe_flags(wildcards):
    return as_flags(config["models"][wildcards.model])


def model_eval_flags(wildcards):
    return as_flags(config["models"][wildcards.model], INFERENCE_KEYS)


def model_input_flags(wildcards):
    return as_flags(config["models"][wildcards.model], INPUT_KEYS)


def model_setting(key):
    """A params/resources function giving the model's value of config key `key`."""

    def value(wildcards):
        return config["models"][wildcards.model][key]

    return value


def model_c_array(wildcards):
    return c_names(wildcards.model)[1]


def model_c_source(wildcards):
    return c_source_path(wildcards.model, ".cc")


def model_c_header(wildcards):
    return c_source_path(wildcards.model, ".h")


def split_instances(wildcards):
    return coco_instances(wildcards.split)


def split_images_dir(wildcards):
    return coco_images_dir(wildcards.split)


def dataset_category(wildcards):
    return DATASETS[wildcards.dataset]["category"]


def dataset_area_threshold(wildcards):
    return DATASETS[wildcards.dataset]["area_threshold"]


def train_shard_reports(wildcards):
    return shard_reports(wildcards.dataset, "train")


def val_shard_reports(wildcards):
    return shard_reports(wildcards.dataset, "val")


def summary_split_args(wildcards, input):
    return " ".join(
        f"--split {split} {input[split]} {' '.join(input[f'{split}_reports'])}"
        for split in SPLITS
    )


def check_existing_coco():
    """With download: false, name whatever the COCO root lacks before any job runs."""
    expected = [coco_images_dir(split) for split in SPLITS]
    expected += [coco_instances(split) for split in SPLITS]
    missing = [path for path in expected if not Path(path).exists()]
    if missing:
        raise WorkflowError(
            f"download is false, but the COCO 2014 copy at coco_dir={COCO_DIR!r} lacks: "
            + ", ".join(missing)
            + ". Point coco_dir at an extracted COCO 2014 root, or set download: true."
        )
