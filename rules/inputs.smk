# Input, params and resources functions of the rules: side-effect free (they read the
# dataset summary once it exists, and an image folder's listing).

import json

from vww.model.recipe import INFERENCE_KEYS, INPUT_KEYS, as_flags
from vww.train import image_cache


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


def coco_download(wildcards):
    return download_settings(
        f"{config['coco_url'].rstrip('/')}/{ZIP_URL_PATHS[wildcards.zip_name]}"
    )


def zip_md5(wildcards):
    return config["coco_md5"][wildcards.zip_name]


def crop_study_reports(run):
    """What the crop study reads of one of its runs (a model of the config)."""
    return [
        result("evaluation", model=run, evaluation="eval"),
        result("float_predictions", model=run, evaluation="eval"),
        result("tflite_eval", model=run),
        result("int8_predictions", model=run),
    ]


def crop_study_inputs(wildcards):
    if not CROP_STUDY_RUNS:
        raise WorkflowError("crop_study is null: set crop_study: {model: ...} to study the crop")
    return [path for run in CROP_STUDY_RUNS for path in crop_study_reports(run)]


def crop_study_run_flags(wildcards):
    """summarize_crop_study.py's --run CROP SEED MODEL_DIR of each run."""
    return " ".join(
        f"--run {config['models'][run]['crop']} {config['models'][run]['seed']} {RESULTS}/{run}"
        for run in CROP_STUDY_RUNS
    )
