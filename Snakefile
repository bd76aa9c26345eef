# Person detection for microcontrollers, from COCO 2014 to a C array, reproducibly.
# Config: config.yaml (validated against schemas/config.schema.yaml); variants with
# `--configfile my.yaml`, which deep-merges over it.

import sys
from pathlib import Path

import yaml
from snakemake.utils import min_version, update_config

min_version("9.0")

# The workflow's package (scripts/vww), found from this file's folder: the workflow runs
# from any working directory (`snakemake -s path/to/Snakefile -d DIR`) and as a module.
sys.path.insert(0, str(Path(workflow.current_basedir) / "scripts"))

from vww.base.config import ConfigError, prepare

# The defaults (config.yaml beside this file) with the run's config (--configfile, --config)
# or a module's (`module ...: config:`) merged over them key by key.
config_defaults = yaml.safe_load((Path(workflow.current_basedir) / "config.yaml").read_text())
update_config(config_defaults, config)
config.clear()
config.update(config_defaults)

# Checked against the schema (its defaults filled in) and across keys; a problem is one
# line naming the key. The crop study's runs join the models (outside `all`).
try:
    CROP_STUDY_RUNS = prepare(config, Path(workflow.current_basedir) / "schemas/config.schema.yaml")
except ConfigError as err:
    sys.exit(f"error: {err}")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/inputs.smk"
include: "rules/startup.smk"


# Every job's environment (rules/startup.smk): part of each job's command, so it holds
# locally, in the container and on SLURM.
shell.prefix(job_environment())


# Every rule runs in this image under `--sdm apptainer`; without it, in the host environment.
container: config["container_image"]


include: "rules/coco.smk"
include: "rules/dataset.smk"
include: "rules/import.smk"
include: "rules/train.smk"
include: "rules/export.smk"
include: "rules/mcu.smk"
include: "rules/study.smk"


rule all:
    default_target: True
    input:
        # Every file the manifest lists (the datasets, checkpoints, evaluations, exports),
        # so a plain rerun rebuilds any that is missing, then the manifest and the report.
        rules.manifest.input,
        rules.manifest.output,
        rules.export.input,


start()


onsuccess:
    print_headlines()
