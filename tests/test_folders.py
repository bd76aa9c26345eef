"""Image folder datasets: labels from the class folders, the same records as COCO's."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from build_tfrecord_shard import build_shard
from conftest import run
from summarize_dataset import DatasetError, summarize
from vww.data.folders import FolderLayoutError, folder_annotations
from vww.data.images import NOT_AN_IMAGE
from vww.data.records import parse_example

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
    annotations, skipped = folder_annotations(folder, "train", CLASSES)
    assert [(im["id"], im["file_name"], im["label"]) for im in annotations["images"]] == [
        (1, "no_person/z.JPG", 0), (2, "person/a.PNG", 1), (3, "person/b.jpg", 1),
        (4, "person/more/c.jpeg", 1)]
    assert all(im["objects"] == [] for im in annotations["images"])
    assert annotations["categories"] == [{"id": 0, "name": "no_person"},
                                         {"id": 1, "name": "person"}]
    assert skipped == [{"file_name": "no_person/notes.txt", "reason": NOT_AN_IMAGE}]


def test_images_are_found_by_content(tmp_path):
    """A .bmp (TFLM's test frames), a .webp, an upper-case .PNG and a PNG named .dat are
    images; a broken link and a text file named .jpg count as images that cannot be read,
    which the shard stage reports; a text file and a FIFO are skipped with the reason."""
    root = tmp_path / "images"
    person = root / "train/person"
    write_image(root / "train/no_person/z.jpg", "JPEG", 1)
    for name, fmt, seed in [("frame.bmp", "BMP", 2), ("photo.webp", "WEBP", 3),
                            ("shot.PNG", "PNG", 4), ("export.dat", "PNG", 5)]:
        write_image(person / name, fmt, seed)
    (person / "notes.txt").write_text("not an image")
    (person / "page.jpg").write_text("<html>404 Not Found</html>")  # a failed download
    (person / "gone").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(person / "pipe")
    annotations, skipped = folder_annotations(root, "train", CLASSES)
    assert [im["file_name"] for im in annotations["images"]] == [
        "no_person/z.jpg", "person/export.dat", "person/frame.bmp", "person/gone",
        "person/page.jpg", "person/photo.webp", "person/shot.PNG"]
    assert skipped == [{"file_name": "person/notes.txt", "reason": NOT_AN_IMAGE},
                       {"file_name": "person/pipe", "reason": "not a regular file"}]

    report = build_shard(annotations["images"], root / "train", tmp_path / "train.record")
    assert report["skipped"] == [
        {"file_name": "person/gone", "id": 4, "reason": "No such file or directory"},
        {"file_name": "person/page.jpg", "id": 5, "reason": NOT_AN_IMAGE}]
    assert [(r["file_name"], r["reason"]) for r in report["reencoded"]] == [
        ("person/export.dat", "PNG data, not JPEG"), ("person/frame.bmp", "BMP data, not JPEG"),
        ("person/photo.webp", "WEBP data, not JPEG"), ("person/shot.PNG", "PNG data, not JPEG")]


def test_class_names_order_sets_the_labels(folder):
    annotations, _ = folder_annotations(folder, "train", ["person", "no_person"])
    assert {im["file_name"]: im["label"] for im in annotations["images"]}["no_person/z.JPG"] == 1


@pytest.mark.parametrize("change,message", [
    (lambda root: None, "val does not exist"),
    (lambda root: (root / "val/person").mkdir(parents=True),
     r"holds the class folders \['person'\]"),
    (lambda root: [(root / f"val/{c}").mkdir(parents=True) for c in [*CLASSES, "cats"]],
     r"\['cats', 'no_person', 'person'\], but class_names is \['no_person', 'person'\]"),
    (lambda root: [(root / f"val/{c}").mkdir(parents=True) for c in CLASSES],
     r"val/no_person holds no image \(no file Pillow reads as one\)"),
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
    log = run("index_image_folder.py", "--folder", folder, "--split", "train",
              "--class-names", *CLASSES, "--output", out).stderr
    assert f"WARNING skipped {folder}/train/no_person/notes.txt: {NOT_AN_IMAGE}\n" in log
    images = json.loads(out.read_text())["images"]
    report = build_shard(images, folder / "train", tmp_path / "train.record", max_image_side=192)
    assert report["records"] == 4 and report["records_by_label"] == {"0": 1, "1": 3}
    assert [r["file_name"] for r in report["reencoded"]] == ["person/a.PNG"]
    examples = [parse_example(s) for s in tf.data.TFRecordDataset(str(tmp_path / "train.record"))]
    by_name = {ex["image/filename"].numpy().decode(): ex for ex in examples}
    assert by_name["person/more/c.jpeg"]["image/width"] == 192  # stored downscaled
    for name, example in by_name.items():
        decoded = tf.io.decode_jpeg(example["image/encoded"])
        assert decoded.shape[:2] == (example["image/height"], example["image/width"]), name
        assert example["image/object/bbox/xmin"].shape == (0,)


def folder_summary(root, **options):
    """Index, shard (one shard per split) and summarize the folder dataset at `root`."""
    splits = {}
    for split in ("train", "val"):
        annotations, _ = folder_annotations(root, split, CLASSES)
        report = build_shard(annotations["images"], root / split,
                             root.parent / f"{split}.record-00000-of-00001")
        splits[split] = (annotations, [{**report, "shard": 0, "num_shards": 1}])
    return summarize(splits, **options)


def test_a_broken_link_is_reported_as_unreadable(folder):
    write_image(folder / "val/person/p.jpg", "JPEG", 5)
    write_image(folder / "val/no_person/n.jpg", "JPEG", 6)
    (folder / "train/person/gone.jpg").symlink_to(folder / "nowhere.jpg")
    summary = folder_summary(folder, max_skipped_fraction=0.5)
    assert summary["train"]["skipped"] == [
        {"file_name": "person/gone.jpg", "id": 4, "reason": "No such file or directory"}]
    assert summary["train"]["records"] == 4


def test_the_same_image_in_train_and_val_fails_the_dataset_by_name(folder):
    write_image(folder / "val/no_person/n.jpg", "JPEG", 6)
    (folder / "val/person").mkdir(parents=True)
    (folder / "val/person/copy.jpg").write_bytes((folder / "train/person/b.jpg").read_bytes())
    (folder / "val/person/link.png").symlink_to(folder / "train/person/a.PNG")
    with pytest.raises(DatasetError) as err:
        folder_summary(folder)
    assert str(err.value) == (
        "2 images are stored in two splits with the same bytes, so evaluation would score "
        "images the model trained on: train/person/a.PNG = val/person/link.png, "
        "train/person/b.jpg = val/person/copy.jpg; remove them from one split, or set "
        "dataset.allow_duplicates: true")
    allowed = folder_summary(folder, allow_duplicates=True)
    assert allowed["val"]["duplicates_of_train"] == [
        {"file_name": "person/link.png", "train_file_name": "person/a.PNG"},
        {"file_name": "person/copy.jpg", "train_file_name": "person/b.jpg"}]


def test_a_split_without_a_readable_image_fails_the_dataset(folder):
    for name in ("person/p.jpg", "no_person/n.jpg"):
        (folder / "val" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "val" / name).write_text("not a JPEG")
    with pytest.raises(DatasetError) as err:
        folder_summary(folder)
    assert str(err.value) == ("val: no record: none of its 2 images could be read "
                              "(2 x not an image format Pillow reads)")


def test_too_many_unreadable_images_fail_the_dataset(folder):
    write_image(folder / "val/person/p.jpg", "JPEG", 5)
    write_image(folder / "val/no_person/n.jpg", "JPEG", 6)
    whole = (folder / "train/person/b.jpg").read_bytes()
    (folder / "train/person/cut.jpg").write_bytes(whole[:300])
    with pytest.raises(DatasetError) as err:
        folder_summary(folder, max_skipped_fraction=0.1)
    assert str(err.value).startswith(
        "train: 1 of 5 images could not be read (20.0%, more than "
        "dataset.max_skipped_fraction = 0.1): 1 x ")
    assert str(err.value).endswith("; first: person/cut.jpg")
    assert folder_summary(folder, max_skipped_fraction=0.2)["train"]["records"] == 4
