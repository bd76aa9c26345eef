# What runs as the workflow starts, in one place. A dry run (`snakemake -n`) leaves every
# file as it was: the checks below read the file system and stop the run with the key at
# fault in one line; repair=true deletes the damaged files it names only in a real run. The
# configuration itself is checked in the Snakefile, before the paths are derived from it
# (vww.base.config).

import json
import os
import shlex
import tempfile

from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod
from vww.base import integrity
from vww.base.files import RESULTS_ENV
from vww.base.cli import RUN_ENV, snakemake_command


def command_line_run():
    """How this run was started, as vww.base.cli.snakemake_command takes it: the Snakefile
    (unless ./Snakefile), the config files and the --config values, paths as given from the
    working directory where they are inside it."""

    def given(path):
        path = Path(path)
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)

    snakefile = Path(workflow.main_snakefile)
    return {
        "snakefile": None if snakefile == Path.cwd() / "Snakefile" else given(snakefile),
        "configfiles": [given(path) for path in workflow.config_settings.configfiles],
        "config": dict(workflow.config_settings.config),
    }


def job_environment():
    """What every job's shell exports: the arithmetic its CLIs compute with
    (vww.base.arithmetic), the results_dir under which what it writes is recorded and its
    inputs checked (vww.base.files, vww.base.integrity), and how this run was started, so
    that a CLI's remedy names the command to paste (vww.base.cli.snakemake_command)."""
    run = shlex.quote(json.dumps(command_line_run()))
    # Snakemake formats the prefix as it does a shell command: its braces are doubled.
    return (
        f"export VWW_ARITHMETIC={config['arithmetic']}; "
        f"export {RESULTS_ENV}={shlex.quote(RESULTS)}; "
        f"export {RUN_ENV}={run.replace('{', '{{').replace('}', '}}')}; "
    )


def check_existing_coco():
    """With download: false, name whatever the COCO root lacks before any job runs."""
    if config["download"] or config["sample_dataset"] is not None:
        return
    if all(source["source"] != "coco" for source in DATASETS.values()):
        return
    expected = [coco_images_dir(split) for split in SPLITS]
    expected += [coco_instances(split) for split in SPLITS]
    missing = [path for path in expected if not Path(path).exists()]
    if missing:
        raise ConfigError(
            "coco_dir",
            f"download is false, but the COCO 2014 copy at {COCO_DIR!r} lacks: "
            + ", ".join(missing)
            + ". Point coco_dir at an extracted COCO 2014 root, or set download: true.",
        )


def check_writable(key, folder):
    """ConfigError naming config key `key` unless `folder` can be created and written:
    caught before the first job, not as a traceback when a job writes there. The folders
    this creates to find out are removed again (deepest first), so it leaves no trace."""
    created = []
    try:
        for place in reversed([Path(folder), *Path(folder).parents]):
            if not place.exists():
                place.mkdir()
                created.append(place)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(
            key,
            f"cannot write to {folder!r} ({err.strerror or err}); set {key} to a folder "
            "this user can create and write",
        )
    finally:
        for place in reversed(created):
            place.rmdir()


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


def repair_damaged_files():
    """With `--config repair=true`: every file whose bytes are not the recorded ones
    (vww.base.integrity, as `snakemake verify` finds them) is named and deleted before the
    jobs are planned, so this run rebuilds it and what depends on it (a damaged file is
    worth nothing). A dry run (-n) names them and deletes nothing."""
    if not (config["repair"] and workflow.is_main_process):
        return
    shards, reports = shards_and_reports()
    recorded = integrity.recorded_digests(result("manifest"), shards, reports, RESULTS)
    damaged = integrity.find_damage(recorded)
    dry_run = workflow.output_settings.dryrun
    for damage in damaged:
        logger.warning(f"repair: {damage.path}: {damage.problem}, to be rebuilt")
        if not dry_run:
            Path(damage.path).unlink(missing_ok=True)
    logger.info(
        f"repair: checked {len(recorded)} files, {len(damaged)} to rebuild"
        + (" (a dry run: none deleted; the run deletes them first)" if dry_run else "")
    )


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


def start():
    """The start-up checks, once every rule is defined; a problem is one line naming the
    key at fault."""
    try:
        check_existing_coco()
        check_output_places()
    except ConfigError as err:
        sys.exit(f"error: {err}")
    repair_damaged_files()
    log_container_images()
