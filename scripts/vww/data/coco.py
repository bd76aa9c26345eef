"""COCO 2014 annotations -> Visual Wake Words labels (the TFLM guide's rule, exactly).

An image is labelled 1 when at least one annotation of the foreground category has
`area / (image width * image height)` strictly greater than the threshold, else 0.
Crowd annotations count like any other (the TFLM guide does not look at `iscrowd`), and images
without any annotation are labelled 0.
"""

import json
from collections import defaultdict
from pathlib import Path

from vww.base.cli import InputError


class UnknownCategoryError(ValueError):
    """The configured category is not one of the annotation file's categories."""


def instances_path(coco_dir, split):
    return Path(coco_dir) / "annotations" / f"instances_{split}2014.json"


def images_dir(coco_dir, split):
    return Path(coco_dir) / f"{split}2014"


def load_json(path):
    """A JSON file's content; InputError names the file when it is unreadable, not UTF-8 or
    not valid JSON (a truncated file: where it stops)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        raise InputError(path, err.strerror) from err
    except UnicodeDecodeError as err:
        raise InputError(path, "not UTF-8 text") from err
    except json.JSONDecodeError as err:
        doc, pos, problem = err.doc, err.pos, err.msg
        end = len(doc.rstrip())
        if pos >= end or problem.startswith("Unterminated string"):
            # Cut short (an interrupted copy): say where it stops, not where the unfinished
            # string started.
            pos, problem = end, "the file ends before the JSON does"
        line, column = doc.count("\n", 0, pos) + 1, pos - doc.rfind("\n", 0, pos)
        raise InputError(path, f"not valid JSON (line {line}, column {column}): {problem}") from err


def category_id(instances, name, source="the annotations"):
    """The id of the category called `name`; an unknown name lists the valid ones."""
    ids = {c["name"]: c["id"] for c in instances["categories"]}
    if name not in ids:
        valid = ", ".join(sorted(ids))
        raise UnknownCategoryError(
            f"category {name!r} is not in {source}; valid names: {valid}"
        )
    return ids[name]


def vww_annotations(instances, category, area_threshold, source="the annotations"):
    """Visual Wake Words annotations of one split, images sorted by id.

    Each image keeps the foreground objects that decided its label (their COCO bbox
    [x, y, w, h] in pixels and area), so training can crop around them.
    """
    foreground_id = category_id(instances, category, source)
    objects_by_image = defaultdict(list)
    for ann in instances["annotations"]:
        if ann["category_id"] == foreground_id:
            objects_by_image[ann["image_id"]].append(ann)

    images = []
    for image in sorted(instances["images"], key=lambda im: im["id"]):
        image_area = image["width"] * image["height"]
        objects = [
            {"bbox": ann["bbox"], "area": ann["area"]}
            for ann in sorted(objects_by_image[image["id"]], key=lambda a: a["id"])
            if ann["area"] / image_area > area_threshold
        ]
        images.append(
            {
                "id": image["id"],
                "file_name": image["file_name"],
                "height": image["height"],
                "width": image["width"],
                "label": 1 if objects else 0,
                "objects": objects,
            }
        )
    return {
        "info": {
            "description": "Visual Wake Words labels derived from COCO 2014",
            "category": category,
            "area_threshold": area_threshold,
            "source": Path(source).name,
        },
        "categories": [{"id": 0, "name": "background"}, {"id": 1, "name": category}],
        "images": images,
    }


def label_map_text(categories):
    """slim's labels.txt: one `id:name` line per class of a VWW annotations' categories."""
    return "".join(f"{c['id']}:{c['name']}\n" for c in sorted(categories, key=lambda c: c["id"]))


def class_names(annotations):
    """The class names of a VWW annotations JSON, by label: [name of 0, name of 1]."""
    return [c["name"] for c in sorted(annotations["categories"], key=lambda c: c["id"])]
