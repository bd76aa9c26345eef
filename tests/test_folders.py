"""Image folder datasets: labels from the class folders, the same records as COCO's."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from build_tfrecord_shard import build_shard
from conftest import run
from vww.folders import FolderLayoutError, folder_annotations
from vww.records import parse_example

CLASSES = ["no_person", "person"]


def write_image(path, fmt, seed, size=(64, 48)):
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())


@pytest.fixture
def folder(tmp_path):
    """train/{no_person,person}: JPEG, PNG, upper-case suffixes, a nested folder, a note."""
    root = tmp_path / "images"
    write_image(root / "train/person/b.jpg", "JPEG", 1)
    write_image(root / "train/person/a.PNG", "PNG", 2)
    write_image(root / "train/person/more/c.jpeg", "JPEG", 3, size=(400, 300))
    write_image(root / "train/no_person/z.JPG", "JPEG", 4)
    (root / "train/no_person/notes.txt").write_text("not an image")
    return root


def test_labels_come_from_the_class_folders(folder):
    annotations, ignored = folder_annotations(folder, "train", CLASSES)
    assert [(im["id"], im["file_name"], im["label"]) for im in annotations["images"]] == [
        (1, "no_person/z.JPG", 0), (2, "person/a.PNG", 1), (3, "person/b.jpg", 1),
        (4, "person/more/c.jpeg", 1)]
    assert all(im["objects"] == [] for im in annotations["images"])
    assert annotations["categories"] == [{"id": 0, "name": "no_person"},
                                         {"id": 1, "name": "person"}]
    assert ignored == ["no_person/notes.txt"]


def test_class_names_order_sets_the_labels(folder):
    annotations, _ = folder_annotations(folder, "train", ["person", "no_person"])
    assert {im["file_name"]: im["label"] for im in annotations["images"]}["no_person/z.JPG"] == 1


@pytest.mark.parametrize("change,message", [
    (lambda root: None, "val does not exist"),
    (lambda root: (root / "val/person").mkdir(parents=True), r"holds the class folders \['person'\]"),
    (lambda root: [(root / f"val/{c}").mkdir(parents=True) for c in [*CLASSES, "cats"]],
     r"\['cats', 'no_person', 'person'\], but class_names is \['no_person', 'person'\]"),
    (lambda root: [(root / f"val/{c}").mkdir(parents=True) for c in CLASSES],
     "val/no_person holds no .jpg, .jpeg or .png image"),
])
def test_layout_errors_name_the_folder(folder, change, message):
    change(folder)
    with pytest.raises(FolderLayoutError, match=message):
        folder_annotations(folder, "val", CLASSES)


def test_cli_error_names_the_config_keys(folder, tmp_path):
    result = run("index_image_folder.py", "--folder", folder, "--split", "val",
                 "--class-names", *CLASSES, "--output", tmp_path / "val.json", check=False)
    assert result.returncode != 0
    assert "val does not exist" in result.stderr and "models.<name>.folder" in result.stderr
    assert not (tmp_path / "val.json").exists()


def test_folder_images_become_records(folder, tmp_path):
    out = tmp_path / "train.json"
    run("index_image_folder.py", "--folder", folder, "--split", "train",
        "--class-names", *CLASSES, "--output", out)
    images = json.loads(out.read_text())["images"]
    report = build_shard(images, folder / "train", tmp_path / "train.record", max_side=192)
    assert report["records"] == 4 and report["records_by_label"] == {"0": 1, "1": 3}
    assert [r["file_name"] for r in report["reencoded"]] == ["person/a.PNG"]
    examples = [parse_example(s) for s in tf.data.TFRecordDataset(str(tmp_path / "train.record"))]
    by_name = {ex["image/filename"].numpy().decode(): ex for ex in examples}
    assert by_name["person/more/c.jpeg"]["image/width"] == 192  # stored downscaled
    for name, example in by_name.items():
        decoded = tf.io.decode_jpeg(example["image/encoded"])
        assert decoded.shape[:2] == (example["image/height"], example["image/width"]), name
        assert example["image/object/bbox/xmin"].shape == (0,)
