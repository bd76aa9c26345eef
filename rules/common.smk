# Paths and names shared by the rules: every file the workflow makes, the datasets and
# models of the config, the lists of what `all` and the manifest hold. Side-effect free:
# nothing here reads or writes a file (what runs at start-up is in rules/startup.smk).

import re
from types import SimpleNamespace

from vww.base import config as workflow_config

# The rules' CLIs, found from the workflow's own folder: the workflow runs from any working
# directory (`snakemake -s path/to/Snakefile -d DIR`) and as a Snakemake module.
SCRIPTS = Path(workflow.current_basedir).parent / "scripts"


def cli(name):
    """The shell command that runs scripts/<name>.py."""
    return f"python {SCRIPTS}/{name}.py"


SPLITS = ("train", "val")
ANNOTATIONS_ZIP = "annotations_trainval2014.zip"
# Where each zip lives under coco_url.
ZIP_URL_PATHS = {
    **{f"{split}2014.zip": f"zips/{split}2014.zip" for split in SPLITS},
    ANNOTATIONS_ZIP: f"annotations/{ANNOTATIONS_ZIP}",
}
PUBLISHED_MODELS = workflow_config.PUBLISHED_MODELS
COCO_DIR = config["coco_dir"]
ZIP_DIR = config["zip_dir"]
RESULTS = config["results_dir"]
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
    published="|".join(PUBLISHED_MODELS),


# Every file the workflow makes under results_dir, defined once. Rules name a file by its key
# with the wildcards left in; the lists of what `all` and the manifest hold fill them in.
RESULT_FILES = {
    "vww_annotations": "datasets/{dataset}/annotations/{split}.json",
    "labels": "datasets/{dataset}/labels.txt",
    "records": "datasets/{dataset}/records/{split}.record-{shard}-of-{num_shards}",
    "shard_report": "datasets/{dataset}/reports/{split}-{shard}-of-{num_shards}.json",
    "dataset_summary": "datasets/{dataset}/summary.json",
    "checkpoint_index": "{model}/train/model.ckpt-{steps}.index",
    "checkpoint_data": "{model}/train/model.ckpt-{steps}.data-00000-of-00001",
    "evaluation": "{model}/{evaluation}.json",
    "inference_graph": "{model}/export/inference_graph.pb",
    "frozen_graph": "{model}/export/frozen_graph.pb",
    "tflite": "{model}/{model}.tflite",
    "tflite_eval": "{model}/tflite_eval.json",
    # Each evaluation's label and decision per image, in record order.
    "float_predictions": "{model}/predictions/{evaluation}.json",
    "int8_predictions": "{model}/predictions/tflite_eval.json",
    "published_zip": "published/{published}.zip",
    "published_tflite": "published/{published}.tflite",
    "import_checkpoint_index": "{model}/init/model.ckpt-0.index",
    "import_checkpoint_data": "{model}/init/model.ckpt-0.data-00000-of-00001",
    "import_frozen_graph": "{model}/init/frozen_graph.pb",
    "requantized_tflite": "{model}/init/requantized.tflite",
    "import_report": "{model}/init/import_report.json",
    "micro_check": "{model}/micro_check.json",
    "c_source": "{model}/c/{c_file}.cc",
    "c_header": "{model}/c/{c_file}.h",
    "c_settings": "{model}/c/{c_file}_settings.h",
    "model_json": "{model}/model.json",
    "model_summary": "{model}/summary.json",
    "training_curves": "{model}/report/training_curves.png",
    "confusion_matrix": "{model}/report/confusion_matrix.png",
    "val_predictions": "{model}/report/val_predictions.png",
    "roc_pr": "{model}/report/roc_pr.png",
    "person_size": "{model}/report/person_size.png",
    "layers": "{model}/report/layers.html",
    "manifest": "MANIFEST.sha256",
    "crop_study_json": "crop_study/study.json",
    "crop_study_table": "crop_study/study.md",
}


def result(name, **values):
    """The path of RESULT_FILES[name] under results_dir, with the wildcards in `values`
    filled in and the others left as wildcards."""
    return re.sub(
        r"\{(\w+)\}",
        lambda field: str(values.get(field[1], field[0])),
        f"{RESULTS}/{RESULT_FILES[name]}",
    )


def coco_images_dir(split):
    return f"{COCO_DIR}/{split}2014"


def coco_instances(split):
    return f"{COCO_DIR}/annotations/instances_{split}2014.json"


def download_settings(url):
    """Where a download comes from and its limits (download_limits): not what (its checksum,
    a param of its own), so another mirror or limit does not redo a finished download
    (Snakemake does not record a param of this type)."""
    return SimpleNamespace(url=url, **config["download_limits"])


def download_command(checksum_flags):
    """The shell command of a download rule: download_file.py with `checksum_flags`, and the
    URL and limits of its params.how (download_settings)."""
    return (
        cli("download_file")
        + f" --url {{params.how.url}} {checksum_flags}"
        + " --min-rate-kib-s {params.how.min_rate_kib_s}"
        " --rate-window-s {params.how.rate_window_s}"
        " --deadline-h {params.how.deadline_h}"
        " --output {output} > {log} 2>&1"
    )


def downloaded_zip(path):
    """Keep the zips read-only, or let Snakemake delete them after extraction."""
    return protected(path) if config["keep_zips"] else temp(path)


def slug(text):
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(text)).strip("_")


def stored_size_tag():
    side = config["dataset"]["max_image_side"]
    return "full" if side is None else f"{side}px"


def dataset_source(model):
    """Where a model's images come from and how they are labelled: what its TFRecords
    depend on."""
    settings = config["models"][model]
    if settings["source"] == "folder":
        return {
            "source": "folder",
            "folder": settings["folder"],
            "class_names": settings["class_names"],
        }
    return {
        "source": "coco",
        "folder": COCO_DIR,
        "category": settings["category"],
        "area_threshold": settings["area_threshold"],
    }


def dataset_id(model):
    """TFRecords are shared by every model with the same images, labels and stored size;
    the images' folder is part of the name, so two sources never share a dataset folder."""
    source = dataset_source(model)
    if source["source"] == "folder":
        labels = "-".join(map(slug, source["class_names"]))
    else:
        labels = f"{slug(source['category'])}-{source['area_threshold']}"
    return f"{slug(source['folder'])}-{labels}-{stored_size_tag()}"


# The models `all` builds: every model of the config but the crop study's runs.
MODELS = sorted(set(config["models"]) - set(CROP_STUDY_RUNS))
DATASETS = {dataset_id(model): dataset_source(model) for model in MODELS}


def init_tflite(model):
    """The .tflite a model's init_from imports (a published model's once downloaded, or a
    path), or None (another model's checkpoint, or no init_from)."""
    base = workflow_config.init_tflite(config, model)
    return result("published_tflite", published=base) if base in PUBLISHED_MODELS else base


def imports():
    """The models whose init_from is a .tflite to import."""
    return [model for model in MODELS if init_tflite(model)]


def datasets_from(source):
    """A wildcard pattern matching exactly the dataset ids of `source` (coco or folder)."""
    ids = [re.escape(d) for d, settings in sorted(DATASETS.items()) if settings["source"] == source]
    return "|".join(ids) or "(?!)"  # (?!) matches nothing


def num_shards(split):
    return config["dataset"][f"{split}_shards"]


def shard_files(name, dataset, split):
    """A split's shard files of `name` (records or shard_report), in shard order."""
    n = num_shards(split)
    return [
        result(name, dataset=dataset, split=split, shard=f"{shard:05d}", num_shards=f"{n:05d}")
        for shard in range(n)
    ]


def dataset_outputs(dataset):
    return [
        *shard_files("records", dataset, "train"),
        *shard_files("records", dataset, "val"),
        result("labels", dataset=dataset),
        result("dataset_summary", dataset=dataset),
    ]


def final_checkpoint(model, part="checkpoint_index"):
    """The .index file (or `part`) of the checkpoint a model's training ends with."""
    return result(part, model=model, steps=config["models"][model]["steps"])


def c_names(model):
    """(file name stem, array name) of a model's C source; default from the model name."""
    settings = config["models"][model]
    stem = re.sub(r"\W", "_", model)
    return (
        settings.get("c_file_name", f"{stem}_model_data"),
        settings.get("c_array_name", f"g_{stem}_model_data"),
    )


wildcard_constraints:
    # The configured names only: x_settings.h is not the header of a C file x_settings.
    c_file="|".join(re.escape(c_names(model)[0]) for model in config["models"]),


def model_outputs(model):
    """Everything `all` builds for a model."""
    c_file = c_names(model)[0]
    return [
        result("model_summary", model=model),
        result("model_json", model=model),
        result("c_source", model=model, c_file=c_file),
        result("c_header", model=model, c_file=c_file),
        result("c_settings", model=model, c_file=c_file),
        *(result(figure, model=model) for figure in REPORT_FIGURES),
    ]


# The report's files of a model (rule report_figures).
REPORT_FIGURES = (
    "training_curves",
    "confusion_matrix",
    "val_predictions",
    "roc_pr",
    "person_size",
    "layers",
)


def import_outputs(model):
    """What importing a model's init_from .tflite makes, a published model's included (a
    user's own .tflite is an input, not made)."""
    made = [
        result(name, model=model)
        for name in (
            "import_checkpoint_index",
            "import_checkpoint_data",
            "import_frozen_graph",
            "requantized_tflite",
            "import_report",
        )
    ]
    base = config["models"][model]["init_from"]
    return [result("published_tflite", published=base), *made] if base in PUBLISHED_MODELS else made


def manifest_inputs():
    """Every artifact whose bytes a build promises to reproduce (figures aside)."""
    paths = []
    for dataset in sorted(DATASETS):
        paths += dataset_outputs(dataset)
        paths += [result("vww_annotations", dataset=dataset, split=split) for split in SPLITS]
    for model in MODELS:
        c_file = c_names(model)[0]
        evaluations = (
            ["eval", "eval_init"] if config["models"][model].get("init_from") else ["eval"]
        )
        paths += [
            final_checkpoint(model),
            final_checkpoint(model, "checkpoint_data"),
            *(result("evaluation", model=model, evaluation=e) for e in evaluations),
            *(
                result(name, model=model, c_file=c_file)
                for name in (
                    "inference_graph",
                    "frozen_graph",
                    "tflite",
                    "tflite_eval",
                    "micro_check",
                    "model_summary",
                    "model_json",
                    "c_source",
                    "c_header",
                    "c_settings",
                )
            ),
        ]
        if init_tflite(model):
            paths += import_outputs(model)
    # Once each: models importing the same published model share its .tflite.
    return list(dict.fromkeys(paths))


def shards_and_reports():
    """(every shard file, its report) of every dataset, in the same order."""
    pairs = [
        (shard, report)
        for dataset in sorted(DATASETS)
        for split in SPLITS
        for shard, report in zip(
            shard_files("records", dataset, split), shard_files("shard_report", dataset, split)
        )
    ]
    return [shard for shard, _ in pairs], [report for _, report in pairs]
