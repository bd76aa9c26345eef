"""VWW labels follow the TFLM guide's rule; checked against an independent pycocotools count."""

import pytest
from pycocotools.coco import COCO

from vww.data.coco import (
    UnknownCategoryError,
    instances_path,
    label_map_text,
    load_json,
    vww_annotations,
)


def pycocotools_labels(instances_file, category, threshold):
    coco = COCO(str(instances_file))
    category_ids = coco.getCatIds(catNms=[category])
    labels = {}
    for image_id, image in coco.imgs.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=category_ids, iscrowd=None))
        area = image["width"] * image["height"]
        labels[image_id] = int(any(ann["area"] / area > threshold for ann in anns))
    return labels


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("category,threshold",
                         [("person", 0.005), ("person", 0.05), ("car", 0.005)])
def test_labels_match_pycocotools(sample_coco, split, category, threshold):
    root, _, _ = sample_coco
    path = instances_path(root, split)
    vww = vww_annotations(load_json(path), category, threshold, str(path))
    ours = {image["id"]: image["label"] for image in vww["images"]}
    expected = pycocotools_labels(path, category, threshold)
    assert ours == expected
    assert [image["id"] for image in vww["images"]] == sorted(expected)
    if category == "person" and threshold == 0.005:
        assert 0 < sum(ours.values()) < len(ours)  # both classes present


def tiny_instances(person_areas, image_area=100 * 100):
    return {
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "images": [{"id": 5, "file_name": "a.jpg", "width": 100, "height": image_area // 100}],
        "annotations": [
            {"id": i, "image_id": 5, "category_id": 1, "area": area, "bbox": [1, 2, 3, 4],
             "iscrowd": 0}
            for i, area in enumerate(person_areas)
        ],
    }


def test_threshold_is_strict():
    assert vww_annotations(tiny_instances([50.0]), "person", 0.005)["images"][0]["label"] == 0
    image = vww_annotations(tiny_instances([50.0, 50.01]), "person", 0.005)["images"][0]
    assert image["label"] == 1
    assert image["objects"] == [{"bbox": [1, 2, 3, 4], "area": 50.01}]


def test_crowd_and_unannotated_images():
    instances = tiny_instances([400.0])
    instances["annotations"][0]["iscrowd"] = 1
    instances["images"].append({"id": 2, "file_name": "b.jpg", "width": 10, "height": 10})
    labels = [im["label"] for im in vww_annotations(instances, "person", 0.005)["images"]]
    assert labels == [0, 1]  # id 2 has no annotation; the crowd counts, as in the TFLM guide


def test_unknown_category_lists_valid_names():
    with pytest.raises(UnknownCategoryError, match="'persn'.*valid names: car, person"):
        vww_annotations(tiny_instances([]), "persn", 0.005, "instances_val2014.json")


def test_label_map():
    categories = [{"id": 1, "name": "person"}, {"id": 0, "name": "background"}]
    assert label_map_text(categories) == "0:background\n1:person\n"
