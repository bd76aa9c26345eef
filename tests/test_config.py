"""Configuration errors name the key at fault before any job runs."""

import re

import pytest

from conftest import REPO, snakemake, write_yaml

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize("override,expected", [
    ("models: {person_detection: {steps: many}}", "['models']['person_detection']['steps']"),
    ("models: {person_detection: {area_treshold: 0.1}}", "'area_treshold' was unexpected"),
    ("coco_md5: {val2014.zip: abc}", "['coco_md5']['val2014.zip']"),
    ("dataset: {train_shards: 0}", "['dataset']['train_shards']"),
    ("keep_zips: maybe", "On instance['keep_zips']"),
    ("dataset: {max_image_side: 8}", "['dataset']['max_image_side']"),
    ("models: {faces: {source: folder, class_names: [a, b]}}", "'folder' is a required property"),
    ("models: {faces: {source: folder, folder: f, class_names: [a]}}", "['models']['faces']"),
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
     "models.wide.init_from: 'person_detection' has another depth_multiplier"),
    ("container_image: docker://ghcr.io/owner/person-detection:1.0",
     "container_image: 'docker://ghcr.io/owner/person-detection:1.0' is not pinned by digest"),
    ("container_image: oras://ghcr.io/owner/person-detection@sha256:abc",
     "container_image: 'oras://ghcr.io/owner/person-detection@sha256:abc' is not pinned"),
])
def test_schema_errors_name_the_key(workdir, override, expected):
    result = snakemake(workdir, "-n", "--configfile",
                       write_yaml(workdir / "bad.yaml", override + "\n"), check=False)
    assert result.returncode != 0
    assert expected in result.stdout


@pytest.mark.parametrize("image", [
    "docker://ghcr.io/owner/person-detection@sha256:" + "0123456789abcdef" * 4,
    "oras://ghcr.io/owner/person-detection-sif@sha256:" + "fedcba9876543210" * 4,
    "/shared/images/person-detection.sif",
])
def test_a_pinned_or_local_image_is_accepted(workdir, image):
    snakemake(workdir, "-n", "--config", f"container_image={image}")


def test_apptainer_dry_run_names_the_image_of_every_job(workdir):
    """Snakemake's dry run shows no job's image; the workflow lists them under --sdm."""
    result = snakemake(workdir, "-n", "--sdm", "apptainer", "--configfile",
                       REPO / "tests/sample_config.yaml")
    planned = re.search(r"^job\s+count\n-+\s+-+\n(.*?)^total", result.stdout,
                        re.MULTILINE | re.DOTALL).group(1).split()[::2]
    images = dict(re.findall(r"^rule (\w+) runs in (\S+)$", result.stdout, re.MULTILINE))
    assert set(planned) - {"all"} <= set(images), (planned, images)
    assert set(images.values()) == {"containers/person-detection.sif"}


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
    assert (f"{key}: cannot write to {folder!r} ({why}); set {key} to a folder this user "
            "can create and write") in result.stdout


def test_missing_coco_copy_is_named(workdir):
    result = snakemake(workdir, "-n", "--config", "download=false", "coco_dir=nowhere",
                       check=False)
    assert result.returncode != 0
    assert "coco_dir='nowhere'" in result.stdout
    assert "nowhere/annotations/instances_train2014.json" in result.stdout


def test_default_config_plans_the_real_coco_download(workdir):
    result = snakemake(workdir, "-n", "-p")
    for url in ("http://images.cocodataset.org/zips/train2014.zip",
                "http://images.cocodataset.org/zips/val2014.zip",
                "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"):
        assert url in result.stdout
    assert "0da8c0bd3d6becc4dcb32757491aca88" in result.stdout
    assert re.search(r"^tfrecord_shard\s+110$", result.stdout, re.MULTILINE)
    assert re.search(r"^download_coco_zip\s+3$", result.stdout, re.MULTILINE)


def test_unknown_category_fails_listing_valid_names(workdir, sample_coco):
    root, _, _ = sample_coco
    override = write_yaml(workdir / "cat.yaml", "models: {person_detection: {category: persn}}\n")
    result = snakemake(workdir, "--configfile", override, "--config", f"coco_dir={root}",
                       "download=false", "--", "dataset", check=False)
    assert result.returncode != 0
    output = result.stdout
    assert "category 'persn'" in output and "toothbrush" in output
