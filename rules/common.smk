# Helpers shared by the rules: paths, per-model settings, checks of the COCO source.

import json
import re
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

# The rules' CLIs, found from the workflow's own folder: the workflow runs from any working
# directory (`snakemake -s path/to/Snakefile -d DIR`) and as a Snakemake module.
SCRIPTS = Path(workflow.current_basedir).parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod
from vww import image_cache, integrity
from vww.recipe import INFERENCE_KEYS, INPUT_KEYS, as_flags


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
# init_from names of published int8 models, each with its config entry {url, md5}.
PUBLISHED_MODELS = ("tflm_person",)
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


def coco_download(wildcards):
    return download_settings(
        f"{config['coco_url'].rstrip('/')}/{ZIP_URL_PATHS[wildcards.zip_name]}"
    )


def zip_md5(wildcards):
    return config["coco_md5"][wildcards.zip_name]


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


MODELS = sorted(config["models"])
DATASETS = {dataset_id(model): dataset_source(model) for model in MODELS}


def init_tflite(model):
    """The .tflite a model's init_from imports (a published model's once downloaded, or a
    path), or None (another model's checkpoint, or no init_from)."""
    base = config["models"][model].get("init_from")
    if base in PUBLISHED_MODELS:
        return result("published_tflite", published=base)
    return base if base is not None and base.endswith(".tflite") else None


def imports():
    """The models whose init_from is a .tflite to import."""
    return [model for model in MODELS if init_tflite(model)]


def check_init_from():
    """Every init_from names another model, without cycles, with the same input, or a
    .tflite that exists (or a published model)."""
    for model in MODELS:
        base = config["models"][model].get("init_from")
        key = f"models.{model}.init_from"
        if base in PUBLISHED_MODELS and base in config["models"]:
            raise WorkflowError(
                f"{key}: {base!r} names both a published model and a model in config; "
                "rename that model"
            )
        if init_tflite(model) and base not in PUBLISHED_MODELS and not Path(base).is_file():
            raise WorkflowError(f"{key}: {base!r}: no such .tflite file")
        chain = [model]
        while base is not None and not init_tflite(chain[-1]):
            key = f"models.{chain[-1]}.init_from"
            if base not in config["models"]:
                raise WorkflowError(
                    f"{key}: {base!r} is none of the models in config ("
                    + ", ".join(MODELS)
                    + "), a published model ("
                    + ", ".join(PUBLISHED_MODELS)
                    + ") or a .tflite path"
                )
            if base in chain:
                raise WorkflowError(f"{key}: {' -> '.join(chain + [base])} is a cycle")
            for setting in ("grayscale", "depth_multiplier"):
                if config["models"][base][setting] != config["models"][chain[-1]][setting]:
                    raise WorkflowError(
                        f"{key}: {base!r} has another {setting}, so its "
                        "weights cannot start this model"
                    )
            chain.append(base)
            base = config["models"][base].get("init_from")


check_init_from()


def log_container_images():
    """Under --sdm apptainer, the image of every rule that runs code (a dry run of
    Snakemake shows none), once per run: not in each cluster job."""
    if (
        workflow.is_main_process
        and DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method
    ):
        for step in sorted(workflow.rules, key=lambda step: step.name):
            if step.is_shell:
                logger.info(f"rule {step.name} runs in {step.container_img}")


def pinned_container_image():
    """config's container_image: a local image file, or a URI pinned by digest. A tag can
    move, and Snakemake keeps the first image it pulled for a URI, so outputs would depend
    on when and where the image was first pulled."""
    image = config["container_image"]
    if re.match(r"[a-z][a-z0-9+.-]*://", image) and not re.search(r"@sha256:[0-9a-f]{64}$", image):
        raise WorkflowError(
            f"container_image: {image!r} is not pinned by digest, so the image behind it "
            "can change: name it as URI@sha256:<64 hex digits> (for example "
            "docker://ghcr.io/OWNER/person-detection@sha256:..., the digest the CI's "
            "publish job prints), or give a local .sif file"
        )
    return image


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


# Input and params functions of the rules.


def run_cores():
    """The cores the run was given (--cores N; `all`: the machine's), for the jobs that use
    every core: training and evaluation. A cluster run gives none (its profile sets each
    rule's threads with set-threads), so 1 there."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def train_mem_mb(wildcards, input):
    """Training's memory: its own, plus the decoded train images when it caches them
    (image_cache.job_memory_mb; auto: when they fit this machine's memory). Snakemake asks
    again once the dataset's summary exists, so the figure follows the dataset's size."""
    summary = Path(input.summary)
    image_bytes = (
        json.loads(summary.read_text())["train"]["decoded_bytes"] if summary.is_file() else None
    )
    return image_cache.job_memory_mb(
        config["models"][wildcards.model]["cache_images"], image_bytes, image_cache.host_memory_mb()
    )


def model_train_records(wildcards):
    return shard_files("records", dataset_id(wildcards.model), "train")


def model_val_records(wildcards):
    return shard_files("records", dataset_id(wildcards.model), "val")


def model_labels(wildcards):
    return result("labels", dataset=dataset_id(wildcards.model))


def model_dataset_summary(wildcards):
    return result("dataset_summary", dataset=dataset_id(wildcards.model))


def model_final_checkpoint(wildcards):
    return final_checkpoint(wildcards.model)


def init_model(wildcards):
    """The model in config whose final checkpoint this one starts from, or None."""
    if init_tflite(wildcards.model):
        return None
    return config["models"][wildcards.model].get("init_from")


def model_init_checkpoint(wildcards):
    """The checkpoint a fine-tuned model starts from: another model's final one, or the
    import of its .tflite (none for a model trained afresh)."""
    if init_tflite(wildcards.model):
        return result("import_checkpoint_index", model=wildcards.model)
    base = init_model(wildcards)
    return final_checkpoint(base) if base else []


def model_init_flags(wildcards, input):
    if not input.init:
        return ""
    base = init_model(wildcards)
    # An import's moving averages are its weights: ema loads them.
    weights = config["models"][base]["eval_weights"] if base else "ema"
    return (
        f"--init-checkpoint {input.init.removesuffix('.index')}"
        f" --init-weights {weights}"
        f" --init-scope {config['models'][wildcards.model]['init_scope']}"
    )


def evaluated_model(wildcards):
    """The model whose settings an evaluation runs with: this one, or for eval_init the
    one it starts from (an import's: this one's)."""
    if wildcards.evaluation == "eval":
        return wildcards.model
    if not config["models"][wildcards.model].get("init_from"):
        raise WorkflowError(f"eval_init.json: models.{wildcards.model} has no init_from")
    return init_model(wildcards) or wildcards.model


def evaluated_checkpoint(wildcards):
    if wildcards.evaluation == "eval_init" and init_tflite(wildcards.model):
        return result("import_checkpoint_index", model=wildcards.model)
    return final_checkpoint(evaluated_model(wildcards))


def evaluated_model_flags(wildcards):
    return as_flags(config["models"][evaluated_model(wildcards)], INFERENCE_KEYS)


def model_init_eval(wildcards):
    if not config["models"][wildcards.model].get("init_from"):
        return []
    return result("evaluation", model=wildcards.model, evaluation="eval_init")


def init_eval_flag(wildcards, input):
    return f"--init-eval {input.init_eval}" if input.init_eval else ""


def checkpoint_prefix(wildcards, input):
    return input.index.removesuffix(".index")


def output_checkpoint_prefix(wildcards, output):
    return output.index.removesuffix(".index")


def model_init_tflite(wildcards):
    return init_tflite(wildcards.model)


def published_download(wildcards):
    return download_settings(config[wildcards.published]["url"])


def published_md5(wildcards):
    return config[wildcards.published]["md5"]


def model_recipe_flags(wildcards):
    return as_flags(config["models"][wildcards.model])


def model_eval_flags(wildcards):
    return as_flags(config["models"][wildcards.model], INFERENCE_KEYS)


def model_input_flags(wildcards):
    return as_flags(config["models"][wildcards.model], INPUT_KEYS)


def operating_point_flags(wildcards):
    settings = config["models"][wildcards.model]
    return (
        f"--operating-rule {settings['operating_rule']}"
        f" --max-false-positive-rate {settings['max_false_positive_rate']}"
        f" --unsure-margin {settings['unsure_margin']}"
    )


def model_setting(key):
    """A params/resources function giving the model's value of config key `key`."""

    def value(wildcards):
        return config["models"][wildcards.model][key]

    return value


def model_c_array(wildcards):
    return c_names(wildcards.model)[1]


def model_c_file(name):
    """An input function: the model's C source or header (`name`: c_source, c_header)."""

    def path(wildcards):
        return result(name, model=wildcards.model, c_file=c_names(wildcards.model)[0])

    return path


def split_instances(wildcards):
    return coco_instances(wildcards.split)


def dataset_images_dir(wildcards):
    """The folder a split's file names are relative to."""
    source = DATASETS[wildcards.dataset]
    if source["source"] == "folder":
        return f"{source['folder']}/{wildcards.split}"
    return coco_images_dir(wildcards.split)


def folder_split_files(wildcards):
    """Every file of an image folder split, so that an added or changed image reruns the
    labelling (a folder's own time stamp misses changes below its class folders)."""
    split_dir = Path(dataset_images_dir(wildcards))
    return sorted(str(p) for p in split_dir.rglob("*") if p.is_file()) or [str(split_dir)]


def dataset_setting(key):
    """A params function giving the dataset's value of `key` (see dataset_source)."""

    def value(wildcards):
        return DATASETS[wildcards.dataset][key]

    return value


def max_image_side_flag():
    """The stored size as the CLIs take it (config's null, as stored, is their 0)."""
    return f"--max-image-side {config['dataset']['max_image_side'] or 0}"


def split_shard_reports(split):
    """An input function: the dataset's shard reports of `split`."""

    def reports(wildcards):
        return shard_files("shard_report", wildcards.dataset, split)

    return reports


def summary_split_args(wildcards, input):
    return " ".join(
        f"--split {split} {input[split]} {' '.join(input[f'{split}_reports'])}" for split in SPLITS
    )


def check_existing_coco():
    """With download: false, name whatever the COCO root lacks before any job runs."""
    if all(source["source"] != "coco" for source in DATASETS.values()):
        return
    expected = [coco_images_dir(split) for split in SPLITS]
    expected += [coco_instances(split) for split in SPLITS]
    missing = [path for path in expected if not Path(path).exists()]
    if missing:
        raise WorkflowError(
            f"download is false, but the COCO 2014 copy at coco_dir={COCO_DIR!r} lacks: "
            + ", ".join(missing)
            + ". Point coco_dir at an extracted COCO 2014 root, or set download: true."
        )


def check_writable(key, folder):
    """WorkflowError naming config key `key` unless `folder` can be created and written:
    caught before the first job, not as a traceback when a job writes there."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise WorkflowError(
            f"{key}: cannot write to {folder!r} ({err.strerror or err}); set {key} to a "
            "folder this user can create and write"
        )


def check_output_places():
    """Every configured place the workflow writes to, checked at start."""
    places = {"results_dir": RESULTS}
    if any(source["source"] == "coco" for source in DATASETS.values()):
        if config["download"]:
            places.update(zip_dir=ZIP_DIR, coco_dir=COCO_DIR)
        elif config["sample_dataset"] is not None:
            places["coco_dir"] = COCO_DIR
    for key, folder in places.items():
        check_writable(key, folder)


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


def repair_damaged_files():
    """With `--config repair=true`: delete every file whose bytes are not the recorded ones
    (vww.integrity, as `snakemake verify` finds them) before the jobs are planned, so this
    run rebuilds them and what depends on them. Under a dry run too: planning happens
    after this, and a damaged file is worth nothing."""
    if not (config["repair"] and workflow.is_main_process):
        return
    shards, reports = shards_and_reports()
    recorded = integrity.recorded_digests(result("manifest"), shards, reports)
    damaged = integrity.find_damage(recorded)
    for damage in damaged:
        deleted = "" if damage.problem == integrity.MISSING else ": deleted"
        logger.warning(f"repair: {damage.path}: {damage.problem}{deleted}, to be rebuilt")
        Path(damage.path).unlink(missing_ok=True)
    logger.info(f"repair: checked {len(recorded)} files, {len(damaged)} to rebuild")


def print_headlines():
    """After a successful run of `all` or `export`: each built model's figures, from its
    summary.json, so nobody has to look for them."""
    if not {"all", "export"} & set(workflow.dag_settings.targets or ["all"]):
        return
    for model in MODELS:
        path = Path(result("model_summary", model=model))
        if not path.is_file():
            continue
        summary = json.loads(path.read_text())
        point = summary.get("operating_point") or {}
        threshold = (
            f"threshold {point['threshold']} (score {point['threshold_probability']:.3f})"
            if point.get("threshold") is not None
            else "no operating point (argmax)"
        )
        logger.info(
            f"{model}: accuracy float {summary['float_accuracy']:.4f}, int8 "
            f"{summary['int8_accuracy']:.4f}, device {summary['device_int8_accuracy']:.4f}; "
            f".tflite {summary['tflite_bytes']:,} bytes, arena {summary['arena_bytes']:,} "
            f"bytes; {threshold}; C files in "
            f"{Path(summary['artifacts']['c_source']).parent}/ ({path})"
        )
