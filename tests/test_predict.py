"""predict.py on real photos (scikit-image's) with a real trained model, .tflite and checkpoint."""

import json
import re
import shutil
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import skimage
import tensorflow as tf
from PIL import Image
from tensorflow.lite.python import schema_py_generated as schema

from build_tfrecord_shard import build_shard
from conftest import SHORT_MODEL, run
from test_images import with_orientation
from vww.data.folders import folder_annotations
from vww.export import micro
from vww.export.litert import dequantize, input_int8, interpreter, io_quantization
from vww.model.dataset import eval_examples, record_files
from vww.model.preprocessing import device_frame
from write_model_settings import pixel_to_input

PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg")
SETTINGS = {"image_size": 96, "grayscale": True}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """scikit-image's photos in a folder tree, and a file that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    data = Path(skimage.__file__).parent / "data"
    for index, name in enumerate(PHOTOS):
        (root / ("b" if index % 2 else "a")).mkdir(exist_ok=True)
        shutil.copy(data / name, root / ("b" if index % 2 else "a") / name)
    return root


def predictions(*args):
    result = run("predict.py", *args, "--json", check=False)
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def test_tflite_predictions_are_what_tflm_computes_in_the_pipeline(exported, photos, tmp_path):
    out, _ = exported
    labels = tmp_path / "labels.txt"
    labels.write_text("0:background\n1:person\n")
    result, lines = predictions(out / "model.tflite", photos, "--labels", labels,
                                "--preprocessing", "slim_eval")
    assert result.returncode == 0, result.stderr
    expected_paths = sorted(str(p) for p in photos.rglob("*.*"))
    assert [line["path"] for line in lines] == expected_paths
    for line in lines:
        assert set(line["scores"]) == {"background", "person"}
        assert abs(sum(line["scores"].values()) - 1) < 0.01
        assert line["label"] == max(line["scores"], key=line["scores"].get)

    # The same photos through the workflow: records as the dataset stores them, the eval
    # preprocessing, the int8 input, TFLM: identical scores.
    (photos.parent / "tree" / "val").mkdir(parents=True, exist_ok=True)
    tree = photos.parent / "tree"
    for class_name in ("a", "b"):
        shutil.copytree(photos / class_name, tree / "val" / class_name, dirs_exist_ok=True)
    images = folder_annotations(tree, "val", ["a", "b"])[0]["images"]
    shard = tmp_path / "val.record-00000-of-00001"
    build_shard(images, tree / "val", shard, max_image_side=192)
    model = (out / "model.tflite").read_bytes()
    litert, tflm = interpreter(model), micro.load(model)
    _, (scale, zero_point) = io_quantization(litert)
    by_name = {Path(line["path"]).relative_to(photos).as_posix(): line for line in lines}
    for image, _, name, _ in eval_examples(record_files([shard], "val"), SETTINGS):
        scores = dequantize(micro.run(tflm, input_int8(litert, image)), scale, zero_point)
        assert list(by_name[name]["scores"].values()) == scores.tolist(), name


def test_device_predictions_are_what_tflm_computes_on_the_camera_frame(exported, photos):
    """The default preprocessing: each photo decoded by Pillow as it is (PNGs never become
    JPEGs), the camera frame of its pixels (device_frame, checked against Pillow's resize
    in test_preprocessing), each pixel mapped through the settings header's table, run in
    TFLM: the scores predict prints."""
    out, _ = exported
    _, lines = predictions(out / "model.tflite", photos)
    model = (out / "model.tflite").read_bytes()
    litert, tflm = interpreter(model), micro.load(model)
    (in_scale, in_zero), (scale, zero_point) = io_quantization(litert)
    table = pixel_to_input(True, in_scale, in_zero)
    slim = {line["path"]: line for line in predictions(out / "model.tflite", photos,
                                                       "--preprocessing", "slim_eval")[1]}
    differ = 0
    for line in lines:
        image = Image.open(line["path"])
        pixels = np.asarray(image.convert("L" if image.mode == "L" else "RGB").convert("RGB"))
        frame = device_frame(tf.constant(pixels), 96, grayscale=True).numpy()
        int8_input = table[frame][np.newaxis]
        scores = dequantize(micro.run(tflm, int8_input), scale, zero_point)
        assert list(line["scores"].values()) == scores.tolist(), line["path"]
        differ += line["scores"] != slim[line["path"]]["scores"]
    # The default is not slim_eval: its crop and JPEG round trip change scores (not every
    # score: a photo the model is sure of can keep its int8 score under both).
    assert differ >= 1


def test_checkpoint_predictions_agree_with_the_int8_model(exported, photos):
    out, checkpoint = exported
    _, int8 = predictions(out / "model.tflite", photos)
    result, float_lines = predictions(checkpoint.parent, photos, *SHORT_MODEL)
    assert result.returncode == 0, result.stderr
    assert [line["path"] for line in float_lines] == [line["path"] for line in int8]
    for got, want in zip(float_lines, int8):
        assert set(got["scores"]) == {"0", "1"}
        assert np.allclose(list(got["scores"].values()), list(want["scores"].values()),
                           atol=0.05), (got, want)


def test_unreadable_image_is_named_and_the_rest_still_run(exported, photos, tmp_path):
    out, _ = exported
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    result, lines = predictions(out / "model.tflite", photos / "a" / PHOTOS[0], broken)
    assert result.returncode == 1
    assert f"{broken}: not an image format Pillow reads" in result.stderr
    assert [line["path"] for line in lines] == [str(photos / "a" / PHOTOS[0])]


def test_folders_are_searched_by_content(exported, tmp_path):
    """A folder's .bmp (TFLM's test frames), .webp, upper-case .PNG and PNG named .dat are
    scored as when named alone; a text file is skipped with a warning; a broken link is an
    image that cannot be read: named on stderr, and the exit status is 1."""
    out, _ = exported
    folder = tmp_path / "mixed"
    folder.mkdir()
    names = {"frame.bmp": "BMP", "photo.webp": "WEBP", "shot.PNG": "PNG", "export.dat": "PNG"}
    for (name, fmt), photo in zip(names.items(), PHOTOS):
        Image.open(Path(skimage.__file__).parent / "data" / photo).save(folder / name, fmt)
    (folder / "notes.txt").write_text("not an image")
    (folder / "gone").symlink_to(tmp_path / "nowhere.png")
    result, lines = predictions(out / "model.tflite", folder)
    assert result.returncode == 1
    assert (f"WARNING skipped {folder / 'notes.txt'}: not an image format Pillow reads\n"
            in result.stderr)
    assert f"ERROR cannot read {folder / 'gone'}: No such file or directory\n" in result.stderr
    assert [Path(line["path"]).name for line in lines] == sorted(names)
    alone, named = predictions(out / "model.tflite", *(folder / name for name in sorted(names)))
    assert alone.returncode == 0, alone.stderr
    assert lines == named


def test_sixteen_bit_png_scores_as_its_eight_bit_twin(exported, tmp_path):
    """A 16-bit grayscale PNG is its 8-bit twin's picture (v = 257 k -> k): same scores."""
    out, _ = exported
    camera = np.asarray(Image.open(Path(skimage.__file__).parent / "data" / "camera.png"))
    Image.fromarray(camera).save(tmp_path / "eight.png")
    Image.fromarray(camera.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode == "I;16"
    for kind in ("device", "slim_eval"):
        result, (eight, sixteen) = predictions(out / "model.tflite", tmp_path / "eight.png",
                                               tmp_path / "sixteen.png", "--preprocessing", kind)
        assert result.returncode == 0, result.stderr
        assert eight["scores"] == sixteen["scores"], kind


def test_a_photo_turned_by_its_exif_orientation_scores_as_the_upright_one(exported, tmp_path):
    """A phone's portrait: its pixels stored turned, with the orientation (6 or 8) that
    turns them back. Scored as the upright photo, under both preprocessings."""
    astronaut = np.asarray(Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png"))
    Image.fromarray(astronaut).save(tmp_path / "upright.png")
    # Orientation 6 shows the stored pixels turned 90 degrees clockwise: store them turned
    # counter-clockwise. 8 the other way.
    for orientation, turns in ((6, 1), (8, -1)):
        (tmp_path / f"turned{orientation}.png").write_bytes(
            with_orientation(np.ascontiguousarray(np.rot90(astronaut, turns)), orientation))
    out, _ = exported
    for kind in ("device", "slim_eval"):
        result, scored = predictions(out / "model.tflite", tmp_path / "upright.png",
                                     tmp_path / "turned6.png", tmp_path / "turned8.png",
                                     "--preprocessing", kind)
        assert result.returncode == 0, result.stderr
        assert scored[0]["scores"] == scored[1]["scores"] == scored[2]["scores"], kind
    # Unturned, the model sees another picture: the orientation is what made them equal.
    (tmp_path / "ignored.png").write_bytes(with_orientation(
        np.ascontiguousarray(np.rot90(astronaut, 1)), 1))
    _, (upright, ignored) = predictions(out / "model.tflite", tmp_path / "upright.png",
                                        tmp_path / "ignored.png")
    assert upright["scores"] != ignored["scores"]


def test_text_output_has_one_line_per_image(exported, photos):
    out, _ = exported
    result = run("predict.py", out / "model.tflite", photos / "b")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [Path(row[0]).name for row in rows] == sorted(PHOTOS[1::2])
    assert all(row[1] in ("0", "1") and row[2].startswith("0=") for row in rows)


def test_checkpoint_of_another_model_is_one_error_line(exported, photos):
    _, checkpoint = exported
    result = run("predict.py", checkpoint, photos, *SHORT_MODEL, "--depth-multiplier", "0.5",
                 check=False)
    assert result.returncode == 1 and not result.stdout and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.fullmatch(
        rf"error: {re.escape(str(checkpoint))}: not a checkpoint of the model the recipe flags "
        r"describe \(\d+ misfits, first: \S+ is \[.*\], the model's \[.*\]\)", errors[0]), errors


def test_model_json_replaces_the_flags(exported, evaluated, photos, sample_records, tmp_path):
    """A model folder as the workflow lays it out, shipping its raw weights: predict on its
    .tflite and on its train dir, and evaluate on its checkpoint, with no flags, give what
    the flags give; model.json holds the .tflite's quantization and its operating point,
    by which predict labels."""
    out, checkpoint = exported
    labels = tmp_path / "labels.txt"
    labels.write_text("0:no_person\n1:someone\n")
    model_dir = tmp_path / "model"
    (model_dir / "train").mkdir(parents=True)
    shutil.copy(out / "model.tflite", model_dir / "m.tflite")
    shutil.copy(out / "model.tflite", model_dir / "other.tflite")
    for part in checkpoint.parent.glob(f"{checkpoint.name}.*"):
        shutil.copy(part, model_dir / "train")
    run("describe_model.py", "--labels", labels, "--tflite", model_dir / "m.tflite",
        "--tflite-eval", evaluated[1],
        "--checkpoint", model_dir / "train" / checkpoint.name, "--max-image-side", 192,
        *SHORT_MODEL, "--eval-weights", "raw", "--output", model_dir / "model.json")
    description = json.loads((model_dir / "model.json").read_text())
    (in_scale, in_zero), (out_scale, out_zero) = io_quantization(
        interpreter((out / "model.tflite").read_bytes()))
    assert description["tflite_input_quantization"] == {"scale": in_scale, "zero_point": in_zero}
    assert description["tflite_output_quantization"] == {"scale": out_scale,
                                                         "zero_point": out_zero}
    assert description["class_names"] == ["no_person", "someone"]
    assert (description["tflite"], description["checkpoint"]) == (
        "m.tflite", f"train/{checkpoint.name}")

    point = json.loads(evaluated[1].read_text())["operating_point"]
    assert description["operating_point"] == point

    _, with_flags = predictions(out / "model.tflite", photos, "--labels", labels)
    assert predictions(model_dir / "m.tflite", photos, "--argmax")[1] == with_flags
    _, float_with_flags = predictions(checkpoint.parent, photos, *SHORT_MODEL, "--labels", labels,
                                      "--eval-weights", "raw")
    assert predictions(model_dir / "train", photos, "--argmax")[1] == float_with_flags
    # By the operating point: the int8 person score against the unsure band.
    _, by_point = predictions(model_dir / "m.tflite", photos)
    for line, argmax_line in zip(by_point, with_flags):
        assert line["scores"] == argmax_line["scores"]
        score = round(line["scores"]["someone"] / out_scale + out_zero)
        assert line["label"] == ("someone" if score >= point["unsure_high"] else "no_person"
                                 if score < point["unsure_low"] else "unsure"), line
    val = sample_records[0]["val"]
    run("evaluate.py", "--checkpoint", checkpoint, "--records", *val, "--eval-weights", "raw",
        "--output", tmp_path / "with_flags.json")
    run("evaluate.py", "--checkpoint", model_dir / "train" / checkpoint.name, "--records", *val,
        "--output", tmp_path / "described.json")
    evaluated = json.loads((tmp_path / "described.json").read_text())
    assert evaluated == json.loads((tmp_path / "with_flags.json").read_text())
    assert evaluated["weights"] == "raw"
    assert set(with_flags[0]["scores"]) == {"no_person", "someone"}
    # model.json describes m.tflite, not this file: the defaults hold.
    _, other = predictions(model_dir / "other.tflite", photos)
    assert set(other[0]["scores"]) == {"0", "1"}


def toco_style(model):
    """The model as TOCO stored it (TFLM's own person_detect.tflite): quantized_dimension 3
    on the 1-D bias tensors with a scale per channel; returns (bytes, tensors changed)."""
    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    changed = 0
    for tensor in tree.subgraphs[0].tensors:
        quantization = tensor.quantization
        if (len(tensor.shape) == 1 and quantization is not None
                and quantization.scale is not None and len(quantization.scale) > 1):
            quantization.quantizedDimension = 3
            changed += 1
    builder = flatbuffers.Builder(0)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed


def test_toco_style_model_runs_in_predict_evaluation_and_the_micro_check(
        exported, photos, sample_records, tmp_path):
    """LiteRT refuses such a model, TFLM runs it: predict, evaluate_tflite and check_micro
    give what they give for the same model stored the standard way."""
    out, _ = exported
    toco, changed = toco_style((out / "model.tflite").read_bytes())
    assert changed == 28  # the bias of each of the 15 convolutions and 13 depthwise ones
    with pytest.raises(ValueError, match="quantized_dimension must be in range"):
        interpreter(toco)
    (tmp_path / "toco.tflite").write_bytes(toco)
    assert micro.load(toco) is not None
    for kind in ("device", "slim_eval"):
        assert predictions(tmp_path / "toco.tflite", photos, "--preprocessing", kind)[1] == \
            predictions(out / "model.tflite", photos, "--preprocessing", kind)[1]
    val = sample_records[0]["val"]
    reports = {}
    for name in ("model", "toco"):
        model = out / "model.tflite" if name == "model" else tmp_path / "toco.tflite"
        for script in ("evaluate_tflite", "check_micro"):
            run(f"{script}.py", "--tflite", model, "--records", *val,
                "--output", tmp_path / f"{script}-{name}.json")
            reports[script, name] = json.loads((tmp_path / f"{script}-{name}.json").read_text())
    assert reports["evaluate_tflite", "toco"] == reports["evaluate_tflite", "model"]
    assert reports["check_micro", "toco"] == reports["check_micro", "model"]
    assert reports["check_micro", "toco"]["mismatches"] == []
