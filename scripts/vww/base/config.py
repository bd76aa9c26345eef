"""The workflow's configuration, checked without Snakemake: the command line's strings read
as YAML would, the JSON schema with its defaults filled in, and the checks across keys.

Every problem is a ConfigError whose message is one line that starts with the key at fault
by its dotted path (`models.person_detection.steps: ...`); an unknown key names the
closest valid one. The Snakefile calls `prepare`; the tests call it directly.
"""

import difflib
import re
from pathlib import Path

import jsonschema
import yaml
from jsonschema import Draft202012Validator, validators

# init_from names of published int8 models, each with its config entry {url, md5}.
PUBLISHED_MODELS = ("tflm_person",)
# Top-level keys `--config key=value` may set to true or false (it passes strings).
COMMAND_LINE_BOOLEANS = ("download", "keep_zips", "repair")


class ConfigError(ValueError):
    """A configuration problem: `key` (its dotted path) and what is wrong with it."""

    def __init__(self, key, problem):
        super().__init__(f"{key}: {problem}")
        self.key = key


def _with_defaults(validator_class):
    """The validator filling in each `properties` entry's default before checking it, as
    Snakemake's own validate does (python-jsonschema's FAQ recipe)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, entries, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in entries.items():
                if "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, entries, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


def dotted(path):
    return ".".join(str(part) for part in path) or "(the configuration)"


def _allowed_keys(schema, root):
    """The keys an object schema (its $ref followed) names in `properties`."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


def _unknown_keys(error, root):
    """ConfigError for the first key an additionalProperties: false refused, naming the
    closest valid key."""
    allowed = _allowed_keys(error.schema, root)
    unknown = sorted(set(error.instance) - set(allowed))[0]
    key = dotted([*error.absolute_path, unknown])
    closest = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
    hint = (f"did you mean {dotted([*error.absolute_path, closest[0]])}?" if closest
            else "valid keys here: " + ", ".join(allowed))
    return ConfigError(key, f"unknown key; {hint}")


def validate(config, schema_path):
    """Check `config` against the schema at `schema_path`, filling in every default
    (in place); a ConfigError names the first key at fault."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    if error.validator == "additionalProperties" and error.validator_value is False:
        raise _unknown_keys(error, schema)
    # The innermost error says most: which branch of a oneOf, which property.
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    raise ConfigError(dotted(error.absolute_path), error.message)


def read_command_line_booleans(config):
    """`--config download=false` arrives as the string "false": read it as YAML would."""
    for key in COMMAND_LINE_BOOLEANS:
        if str(config.get(key)).lower() in ("true", "false"):
            config[key] = str(config[key]).lower() == "true"


def init_tflite(config, model):
    """The .tflite a model's init_from names (a published model's name or a path), or None
    (another model's checkpoint, or no init_from)."""
    base = config["models"][model].get("init_from")
    if base in PUBLISHED_MODELS or (base is not None and base.endswith(".tflite")):
        return base
    return None


def check_init_from(config):
    """Every init_from names another model, without cycles, with the same input, or a
    .tflite that exists (or a published model)."""
    models = config["models"]
    for model in sorted(models):
        base = models[model].get("init_from")
        key = f"models.{model}.init_from"
        if base in PUBLISHED_MODELS and base in models:
            raise ConfigError(key, f"{base!r} names both a published model and a model in "
                                   "config; rename that model")
        if (init_tflite(config, model) and base not in PUBLISHED_MODELS
                and not Path(base).is_file()):
            raise ConfigError(key, f"{base!r}: no such .tflite file")
        chain = [model]
        while base is not None and not init_tflite(config, chain[-1]):
            key = f"models.{chain[-1]}.init_from"
            if base not in models:
                raise ConfigError(key, f"{base!r} is none of the models in config ("
                                  + ", ".join(sorted(models)) + "), a published model ("
                                  + ", ".join(PUBLISHED_MODELS) + ") or a .tflite path")
            if base in chain:
                raise ConfigError(key, f"{' -> '.join(chain + [base])} is a cycle")
            for setting in ("grayscale", "depth_multiplier"):
                if models[base][setting] != models[chain[-1]][setting]:
                    raise ConfigError(key, f"{base!r} has another {setting}, so its weights "
                                           "cannot start this model")
            chain.append(base)
            base = models[base].get("init_from")


def check_container_image(config):
    """container_image: a local image file, or a URI pinned by digest. A tag can move, and
    Snakemake keeps the first image it pulled for a URI, so outputs would depend on when
    and where the image was first pulled."""
    image = config["container_image"]
    if re.match(r"[a-z][a-z0-9+.-]*://", image) and not re.search(r"@sha256:[0-9a-f]{64}$",
                                                                   image):
        raise ConfigError("container_image", (
            f"{image!r} is not pinned by digest, so the image behind it can change: name it "
            "as URI@sha256:<64 hex digits> (for example docker://ghcr.io/OWNER/"
            "person-detection@sha256:..., the digest the CI's publish job prints), or give "
            "a local .sif file"))


def check_sample_source(config):
    if config["sample_dataset"] is not None and config["download"]:
        raise ConfigError("sample_dataset", "generates a synthetic COCO at coco_dir; set "
                                            "download: false with it")


def crop_study_runs(config):
    """{model name: settings} of the crop study's runs (config crop_study): its model's
    settings with each of its crops and seeds; {} without a study."""
    study = config["crop_study"]
    if study is None:
        return {}
    if study["model"] not in config["models"]:
        raise ConfigError("crop_study.model", f"{study['model']!r} is none of the models in "
                                              "config (" + ", ".join(sorted(config["models"]))
                                              + ")")
    base = config["models"][study["model"]]
    return {f"crop_study.{crop}.seed{seed}": {**base, "crop": crop, "seed": seed}
            for crop in study["crops"] for seed in study["seeds"]}


def prepare(config, schema_path):
    """The run's configuration as the rules use it: command-line booleans read, the schema's
    defaults filled in and checked, the checks across keys, and the crop study's runs added
    to the models (in place). Returns the names of the study's runs, crop by crop as
    configured."""
    read_command_line_booleans(config)
    validate(config, schema_path)
    check_init_from(config)
    check_container_image(config)
    check_sample_source(config)
    runs = crop_study_runs(config)
    config["models"].update(runs)
    return list(runs)
