"""The TFRecord layout: stored person boxes against an independent computation from the
COCO annotations, and the shard sets readers accept."""

import json

import numpy as np
import pytest

from build_tfrecord_shard import build_shard
from conftest import read_records
from test_images import UPRIGHT, with_orientation
from vww.data.coco import images_dir, instances_path, load_json, vww_annotations
from vww.data.records import ShardSetError, shard_name
from vww.model.dataset import record_files

KEYS = ("xmin", "xmax", "ymin", "ymax")


def expected_boxes(instances_file, threshold=0.005):
    """{file name: {xmin, xmax, ymin, ymax: float32 arrays}}, straight from the instances:
    each person box of more than `threshold` of its image, in annotation-id order, as a
    fraction of the image's original width and height, clipped to [0, 1]."""
    instances = json.loads(instances_file.read_text())
    person = next(c["id"] for c in instances["categories"] if c["name"] == "person")
    expected = {}
    for image in instances["images"]:
        width, height = image["width"], image["height"]
        anns = sorted((a for a in instances["annotations"]
                       if a["image_id"] == image["id"] and a["category_id"] == person
                       and a["area"] > threshold * width * height), key=lambda a: a["id"])
        corners = np.array([[a["bbox"][0] / width, (a["bbox"][0] + a["bbox"][2]) / width,
                             a["bbox"][1] / height, (a["bbox"][1] + a["bbox"][3]) / height]
                            for a in anns], np.float64).reshape(-1, 4)
        corners = np.clip(corners, 0.0, 1.0).astype(np.float32)
        expected[image["file_name"]] = dict(zip(KEYS, corners.T))
    return expected


@pytest.mark.parametrize("max_image_side", [192, None], ids=["192px", "full"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_every_stored_box_is_the_annotated_box(sample_coco, tmp_path, split, max_image_side):
    root, _, _ = sample_coco
    images = vww_annotations(load_json(instances_path(root, split)), "person", 0.005)["images"]
    shard = tmp_path / "shard"
    build_shard(images, images_dir(root, split), shard, max_image_side)
    expected = expected_boxes(instances_path(root, split))

    boxes = resized = 0
    for example in read_records([shard]):
        name = example["image/filename"].decode()
        for key in KEYS:
            assert np.array_equal(example[f"image/object/bbox/{key}"], expected[name][key]), \
                (name, key, example[f"image/object/bbox/{key}"], expected[name][key])
        boxes += len(expected[name]["xmin"])
        original = next(i for i in images if i["file_name"] == name)
        resized += (example["image/height"], example["image/width"]) != (
            original["height"], original["width"])
    assert boxes > 10  # the comparison covered many boxes,
    assert (resized > 10) == (max_image_side is not None)  # on stored sizes unlike the original


def test_readers_take_exactly_one_complete_shard_set(tmp_path):
    for split, n in (("val", 2), ("val", 3), ("train", 1)):
        for shard in range(n):
            (tmp_path / shard_name(split, shard, n)).write_bytes(b"")
    two = [tmp_path / shard_name("val", i, 2) for i in (1, 0)]
    assert record_files(two, "val") == [str(p) for p in reversed(two)]

    cases = {
        # stale shards of an earlier val_shards, as a folder glob would find them
        f"{tmp_path}: shards of different sets mixed: val.record-*-of-00002, "
        "val.record-*-of-00003":
            sorted(tmp_path.glob("val.record-*")),
        f"{tmp_path}: 2 shard files given for a set of 3 val shards; missing: "
        "val.record-00001-of-00003":
            [tmp_path / shard_name("val", i, 3) for i in (0, 2)],
        f"{tmp_path / shard_name('train', 0, 1)}: a train shard where val shards are needed":
            [tmp_path / shard_name("train", 0, 1)],
        f"{tmp_path / 'val.record-00007-of-00009'}: no such file":
            [tmp_path / "val.record-00007-of-00009"],
    }
    for message, paths in cases.items():
        with pytest.raises(ShardSetError) as err:
            record_files(paths, "val")
        assert str(err.value) == message


@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_of_a_rotated_photo_follow_the_upright_picture(orientation, tmp_path):
    """A photo whose EXIF orientation turns it (the annotation's box in its stored pixels):
    the record's box is where that box is in the upright picture the record stores,
    computed here by turning a mask of the box with numpy."""
    height, width, (x, y, w, h) = 40, 60, (5, 8, 20, 12)
    pixels = np.zeros((height, width, 3), np.uint8)
    (tmp_path / "photo.png").write_bytes(with_orientation(pixels, orientation))
    image = {"id": 1, "file_name": "photo.png", "label": 1, "width": width, "height": height,
             "objects": [{"bbox": [x, y, w, h], "area": w * h}]}
    build_shard([image], tmp_path, tmp_path / "train.record-00000-of-00001")
    record, = read_records([tmp_path / "train.record-00000-of-00001"])

    mask = np.zeros((height, width), bool)
    mask[y:y + h, x:x + w] = True
    upright = UPRIGHT[orientation](mask)
    rows, cols = np.flatnonzero(upright.any(axis=1)), np.flatnonzero(upright.any(axis=0))
    expected = {"xmin": cols[0] / upright.shape[1], "xmax": (cols[-1] + 1) / upright.shape[1],
                "ymin": rows[0] / upright.shape[0], "ymax": (rows[-1] + 1) / upright.shape[0]}
    assert (record["image/height"], record["image/width"]) == upright.shape
    for key, value in expected.items():
        np.testing.assert_allclose(record[f"image/object/bbox/{key}"], [value], rtol=1e-6)
