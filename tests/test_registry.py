"""The recipe's choices come from one registry each (vww.model.registry): the config schema's
enums and the CLIs' choices are its names, and a new evaluation preprocessing is one
function and one entry, which the evaluation, predict and the settings header then use."""

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml

import evaluate_tflite
import predict
import train
import write_model_settings
from conftest import REPO, read_records
from vww.model import preprocessing, recipe, registry
from vww.model.dataset import eval_examples, record_files

SCHEMA = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
MODEL = SCHEMA["$defs"]["model"]["properties"]
SETTINGS = {"image_size": 96, "grayscale": True}


def test_the_schemas_enums_are_the_registries_names():
    assert MODEL["crop"]["enum"] == list(registry.TRAIN_CROPS)
    assert MODEL["operating_rule"]["enum"] == list(registry.OPERATING_RULES)
    study = SCHEMA["properties"]["crop_study"]["oneOf"][1]["properties"]
    assert study["crops"]["items"]["enum"] == list(registry.TRAIN_CROPS)
    assert study["crops"]["default"] == list(registry.TRAIN_CROPS)


def test_the_clis_choices_are_the_registries_names(capsys):
    assert recipe.choices("crop") == tuple(registry.TRAIN_CROPS)
    assert recipe.choices("eval_weights") == ("ema", "raw")
    for cli, flag, names in (
            (predict, "--preprocessing", sorted(registry.EVAL_PREPROCESSINGS)),
            (evaluate_tflite, "--operating-rule", list(registry.OPERATING_RULES)),
            (train, "--crop", list(registry.TRAIN_CROPS))):
        with pytest.raises(SystemExit):
            cli.main(["--help"])
        assert f"{flag} {{{','.join(names)}}}" in capsys.readouterr().out, cli


def mirrored(jpeg, size, grayscale):
    """A preprocessing of one's own: slim's evaluation image, mirrored."""
    return tf.reverse(preprocessing.eval_image(jpeg, size, grayscale), [1])


@pytest.fixture
def with_mirror(monkeypatch):
    entry = registry.EvalPreprocessing(stored=mirrored, picture=None, help="mirrored")
    monkeypatch.setitem(registry.EVAL_PREPROCESSINGS, "mirror", entry)


def test_a_new_preprocessing_is_one_entry_the_evaluation_uses(with_mirror, sample_records):
    files = record_files(sample_records[0]["val"], "val")
    plain = [e.image for e in eval_examples(files, SETTINGS, 5, kind="slim_eval")]
    mirror = [e.image for e in eval_examples(files, SETTINGS, 5, kind="mirror")]
    for image, flipped in zip(plain, mirror, strict=True):
        np.testing.assert_array_equal(image[:, :, ::-1], flipped)


def test_evaluate_tflite_reports_every_registered_preprocessing(with_mirror, exported,
                                                                 sample_records, tmp_path):
    out, _ = exported
    evaluate_tflite.main(["--tflite", str(out / "model.tflite"), "--records",
                          *map(str, sample_records[0]["val"]), "--output",
                          str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(report["by_preprocessing"]) == ["device", "mirror", "slim_eval"]
    images = len(read_records(sample_records[0]["val"]))
    assert sum(map(sum, report["by_preprocessing"]["mirror"]["confusion_matrix"])) == images


def test_the_settings_headers_pixel_table_is_the_device_entrys(monkeypatch):
    device = registry.EVAL_PREPROCESSINGS[registry.DEVICE_PREPROCESSING]
    table = write_model_settings.pixel_to_input(True, 1 / 127.5, -1)
    # Registered in its place: a camera reading every pixel at half its value.
    darker = device._replace(frame_input=lambda frame, grayscale:
                             device.frame_input(frame // 2, grayscale))
    monkeypatch.setitem(registry.EVAL_PREPROCESSINGS, registry.DEVICE_PREPROCESSING, darker)
    np.testing.assert_array_equal(write_model_settings.pixel_to_input(True, 1 / 127.5, -1),
                                  table[np.arange(256) // 2])
