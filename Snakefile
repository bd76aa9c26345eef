# Person detection for microcontrollers, from COCO 2014 to a C array, reproducibly.
# Config: config.yaml (validated against schemas/config.schema.yaml); variants with
# `--configfile my.yaml`, which deep-merges over it.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


# `--config download=false` arrives as the string "false": read it as YAML would.
for key in ("download", "keep_zips"):
    if str(config.get(key)).lower() in ("true", "false"):
        config[key] = str(config[key]).lower() == "true"

validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


# Every rule runs in this image under `--sdm apptainer`; without it, in the host environment.
container: config["container_image"]


include: "rules/common.smk"
include: "rules/coco.smk"
include: "rules/dataset.smk"
include: "rules/train.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        rules.dataset.input,
        rules.evaluate.input,
        rules.export.input,
        rules.manifest.output,
