# Person detection for microcontrollers, from COCO 2014 to a C array, reproducibly.
# Config: config.yaml (validated against schemas/config.schema.yaml); variants with
# `--configfile my.yaml`, which deep-merges over it.

from pathlib import Path

import yaml
from snakemake.utils import min_version, update_config, validate

min_version("9.0")

# The defaults (config.yaml beside this file) with the run's config (--configfile, --config)
# or a module's (`module ...: config:`) merged over them key by key: the workflow runs from
# any working directory and as a module.
config_defaults = yaml.safe_load((Path(workflow.current_basedir) / "config.yaml").read_text())
update_config(config_defaults, config)
config.clear()
config.update(config_defaults)

# `--config download=false` arrives as the string "false": read it as YAML would.
for key in ("download", "keep_zips", "repair"):
    if str(config.get(key)).lower() in ("true", "false"):
        config[key] = str(config[key]).lower() == "true"

validate(config, "schemas/config.schema.yaml")

# Every job's CLIs compute with this arithmetic (scripts/vww/arithmetic.py): part of each
# job's command, so it holds locally, in the container and on SLURM.
shell.prefix(f"export VWW_ARITHMETIC={config['arithmetic']}; ")


report: "report/workflow.rst"


include: "rules/common.smk"


check_output_places()
repair_damaged_files()


# Every rule runs in this image under `--sdm apptainer`; without it, in the host environment.
container: pinned_container_image()


include: "rules/coco.smk"
include: "rules/dataset.smk"
include: "rules/import.smk"
include: "rules/train.smk"
include: "rules/export.smk"
include: "rules/mcu.smk"


rule all:
    default_target: True
    input:
        # Every file the manifest lists (the datasets, checkpoints, evaluations, exports),
        # so a plain rerun rebuilds any that is missing, then the manifest and the report.
        rules.manifest.input,
        rules.manifest.output,
        rules.export.input,


log_container_images()


onsuccess:
    print_headlines()
