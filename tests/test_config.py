"""Configuration errors name the key at fault in one line before any job runs: checked here
without Snakemake (vww.base.config, what the Snakefile calls), then the few that need a
Snakemake parse through Snakemake itself."""

import re

import pytest
import yaml
from snakemake.utils import update_config

from conftest import REPO, snakemake, write_yaml
from vww.base.config import ConfigError, crop_study_runs, prepare

SCHEMA = REPO / "schemas/config.schema.yaml"


def configured(override):
    """config.yaml with the YAML `override` deep-merged over it, as --configfile does."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load(override))
    return config


@pytest.mark.parametrize("override, expected", [
    ("models: {person_detection: {steps: many}}",
     "models.person_detection.steps: 'many' is not of type 'integer'"),
    ("models: {person_detection: {area_treshold: 0.1}}",
     "models.person_detection.area_treshold: unknown key; did you mean "
     "models.person_detection.area_threshold?"),
    ("models: {person_detection: {stpes: 10}}",
     "models.person_detection.stpes: unknown key; did you mean models.person_detection.steps?"),
    ("sample_dataset: {train_imgs: 20}\ndownload: false",
     "sample_dataset.train_imgs: unknown key; did you mean sample_dataset.train_images?"),
    ("tflm_sources: {archives: {ruy: {file: x, tree_sha256: y}}}",
     "tflm_sources.archives.ruy.tree_sha256: unknown key; did you mean "
     "tflm_sources.archives.ruy.tar_tree_sha256?"),
    ("coco_md5: {val2014.zip: abc}",
     "coco_md5.val2014.zip: 'abc' does not match '^[0-9a-fA-F]{32}$'"),
    ("dataset: {train_shards: 0}", "dataset.train_shards: 0 is less than the minimum of 1"),
    ("keep_zips: maybe", "keep_zips: 'maybe' is not of type 'boolean'"),
    ("dataset: {max_image_side: 8}",
     "dataset.max_image_side: 8 is less than the minimum of 32"),
    ("download_limits: {deadline_h: -1}",
     "download_limits.deadline_h: -1 is less than or equal to the minimum of 0"),
    ("models: {faces: {source: folder, class_names: [a, b]}}",
     "models.faces: 'folder' is a required property"),
    ("models: {faces: {source: folder, folder: f, class_names: [a]}}",
     "models.faces.class_names: ['a'] is too short"),
    ("mcu: {cores: [cortex-m9]}",
     "mcu.cores.0: 'cortex-m9' is not one of ['cortex-m0plus', 'cortex-m4f', 'cortex-m7', "
     "'cortex-m33', 'cortex-m55']"),
    ("models: {faces: {init_from: nobody}}",
     "models.faces.init_from: 'nobody' is none of the models in config (faces, "
     "person_detection), a published model (tflm_person) or a .tflite path"),
    ("models: {faces: {init_from: nowhere/model.tflite}}",
     "models.faces.init_from: 'nowhere/model.tflite': no such .tflite file"),
    ("models: {tflm_person: {}, faces: {init_from: tflm_person}}",
     "models.faces.init_from: 'tflm_person' names both a published model and a model in "
     "config; rename that model"),
    ("models: {a: {init_from: b}, b: {init_from: a}}",
     "models.b.init_from: a -> b -> a is a cycle"),
    ("models: {wide: {init_from: person_detection, depth_multiplier: 0.5}}",
     "models.wide.init_from: 'person_detection' has another depth_multiplier, so its "
     "weights cannot start this model"),
    ("container_image: docker://ghcr.io/owner/person-detection:1.0",
     "container_image: 'docker://ghcr.io/owner/person-detection:1.0' is not pinned by "
     "digest, so the image behind it can change: name it as URI@sha256:<64 hex digits> (for "
     "example docker://ghcr.io/OWNER/person-detection@sha256:..., the digest the CI's "
     "publish job prints), or give a local .sif file"),
    ("container_image: oras://ghcr.io/owner/person-detection@sha256:abc",
     "container_image: 'oras://ghcr.io/owner/person-detection@sha256:abc' is not pinned by "
     "digest"),
    ("sample_dataset: {train_images: 20}",
     "sample_dataset: generates a synthetic COCO at coco_dir; set download: false with it"),
    ("crop_study: {model: nobody}",
     "crop_study.model: 'nobody' is none of the models in config (person_detection)"),
    ("crop_study: {model: person_detection, crops: [middle]}",
     "crop_study.crops.0: 'middle' is not one of ['whole_image', 'person_boxes']"),
])
def test_a_bad_config_is_one_line_naming_the_key(override, expected):
    with pytest.raises(ConfigError) as error:
        prepare(configured(override), SCHEMA)
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("image", [
    "docker://ghcr.io/owner/person-detection@sha256:" + "0123456789abcdef" * 4,
    "oras://ghcr.io/owner/person-detection-sif@sha256:" + "fedcba9876543210" * 4,
    "/shared/images/person-detection.sif",
])
def test_a_pinned_or_local_image_is_accepted(image):
    prepare(configured(f"container_image: {image}"), SCHEMA)


def test_command_line_strings_read_as_yaml_and_defaults_filled_in():
    config = configured("{}")
    config.update(download="false", keep_zips="True", repair="false")
    del config["download_limits"]
    prepare(config, SCHEMA)
    assert (config["download"], config["keep_zips"], config["repair"]) == (False, True, False)
    assert config["download_limits"] == {"min_rate_kib_s": 256, "rate_window_s": 300,
                                         "deadline_h": 24}
    assert config["models"]["person_detection"]["crop"] == "whole_image"


def test_crop_study_runs_are_the_models_settings_with_each_crop_and_seed():
    config = configured("crop_study: {model: person_detection, seeds: [3, 5]}\n"
                        "models: {person_detection: {steps: 20}}")
    runs = prepare(config, SCHEMA)
    assert runs == ["crop_study.whole_image.seed3", "crop_study.whole_image.seed5",
                    "crop_study.person_boxes.seed3", "crop_study.person_boxes.seed5"]
    base = config["models"]["person_detection"]
    for name in runs:
        _, crop, seed = name.split(".")
        assert config["models"][name] == {**base, "crop": crop, "seed": int(seed[4:])}
    assert crop_study_runs(configured("{}")) == {} == crop_study_runs({"crop_study": None})


# Through Snakemake: what its parse adds to the checks above.


@pytest.mark.workflow
def test_snakemake_prints_a_config_error_as_one_line(workdir):
    result = snakemake(workdir, "-n", "--configfile",
                       write_yaml(workdir / "bad.yaml", "models: {person_detection: "
                                                        "{stpes: 10}}\n"), check=False)
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines()
             if not line.startswith("Using workflow specific profile")]
    assert lines == ["error: models.person_detection.stpes: unknown key; did you mean "
                     "models.person_detection.steps?"]


@pytest.mark.workflow
def test_apptainer_dry_run_names_the_image_of_every_job(workdir):
    """Snakemake's dry run shows no job's image; the workflow lists them under --sdm."""
    result = snakemake(workdir, "-n", "--sdm", "apptainer", "--configfile",
                       REPO / "tests/sample_config.yaml")
    planned = re.search(r"^job\s+count\n-+\s+-+\n(.*?)^total", result.stdout,
                        re.MULTILINE | re.DOTALL).group(1).split()[::2]
    images = dict(re.findall(r"^rule (\w+) runs in (\S+)$", result.stdout, re.MULTILINE))
    assert set(planned) - {"all"} <= set(images), (planned, images)
    assert set(images.values()) == {"containers/person-detection.sif"}


@pytest.mark.workflow
@pytest.mark.parametrize("key, folder, why", [
    ("results_dir", "a_file/results", "Not a directory"),
    ("results_dir", "/proc/results", "No such file or directory"),
    ("zip_dir", "/proc/zips", "No such file or directory"),
])
def test_an_output_place_that_cannot_be_written_is_named(workdir, key, folder, why):
    """Before any job runs, with the key: not as a traceback of the first job."""
    (workdir / "a_file").write_text("a file, not a folder\n")
    result = snakemake(workdir, "-n", "--config", f"{key}={folder}", check=False)
    assert result.returncode != 0
    assert (f"error: {key}: cannot write to {folder!r} ({why}); set {key} to a folder this "
            "user can create and write") in result.stdout.splitlines()


@pytest.mark.workflow
def test_checking_the_output_places_leaves_nothing_behind(workdir):
    """The check creates the folders it tries, then removes them: a dry run writes nothing."""
    snakemake(workdir, "-n", "--config", "results_dir=new/results", "zip_dir=new/zips")
    assert sorted(p.name for p in workdir.iterdir()) == [".snakemake"]


@pytest.mark.workflow
def test_missing_coco_copy_is_named(workdir):
    result = snakemake(workdir, "-n", "--config", "download=false", "coco_dir=nowhere",
                       check=False)
    assert result.returncode != 0
    assert ("error: coco_dir: download is false, but the COCO 2014 copy at 'nowhere' lacks: "
            "nowhere/train2014, nowhere/val2014, nowhere/annotations/instances_train2014.json, "
            "nowhere/annotations/instances_val2014.json. Point coco_dir at an extracted COCO "
            "2014 root, or set download: true.") in result.stdout.splitlines()


@pytest.mark.workflow
def test_default_config_plans_the_real_coco_download(workdir):
    result = snakemake(workdir, "-n", "-p")
    for url in ("http://images.cocodataset.org/zips/train2014.zip",
                "http://images.cocodataset.org/zips/val2014.zip",
                "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"):
        assert url in result.stdout
    assert "0da8c0bd3d6becc4dcb32757491aca88" in result.stdout
    assert re.search(r"^tfrecord_shard\s+110$", result.stdout, re.MULTILINE)
    assert re.search(r"^download_coco_zip\s+3$", result.stdout, re.MULTILINE)


@pytest.mark.workflow
def test_unknown_category_fails_listing_valid_names(workdir, sample_coco):
    root, _, _ = sample_coco
    override = write_yaml(workdir / "cat.yaml", "models: {person_detection: {category: persn}}\n")
    result = snakemake(workdir, "dataset", "--configfile", override, "--config",
                       f"coco_dir={root}", "download=false", check=False)
    assert result.returncode != 0
    output = result.stdout
    assert "category 'persn'" in output and "toothbrush" in output
