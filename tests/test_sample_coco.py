"""The synthetic COCO 2014 sample and its COCO-sized variant (--scale, here at a small count,
same code path): layout, JSON, special cases, determinism, zips, learnability."""

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from vww.sample.coco import COCO_CATEGORIES, write_coco_scale, write_sample_coco, write_sample_zips

SPLITS = ("train2014", "val2014")
ZIPS = ("train2014.zip", "val2014.zip", "annotations_trainval2014.zip")
FORMAT_CASES = ("grayscale", "cmyk", "png_as_jpg", "corrupt")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_sample_coco.py"


# Each generator with the arguments the tests use and the image counts they give.
GENERATORS = {
    "sample": (write_sample_coco, {}, (160, 80)),
    "scale": (write_coco_scale, {"train_images": 120, "val_images": 60, "workers": 2},
              (120, 60)),
}


@pytest.fixture(scope="module", params=sorted(GENERATORS))
def sample(request, tmp_path_factory):
    """A dataset of each generator with zips: (root, zip_dir, summary, md5s, generator)."""
    write, kwargs, _ = GENERATORS[request.param]
    base = tmp_path_factory.mktemp(request.param)
    summary = write(base / "coco", **kwargs)
    md5s = write_sample_zips(base / "coco", base / "zips")
    return base / "coco", base / "zips", summary, md5s, request.param


def load(root, split):
    return json.loads((root / "annotations" / f"instances_{split}.json").read_text())


def annotations_by_image(coco):
    by_image = {im["id"]: [] for im in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    return by_image


def has_person_label(image, anns):
    """The VWW rule: some person annotation covers more than 0.5% of the image."""
    return any(a["category_id"] == 1 and a["area"] / (image["width"] * image["height"]) > 0.005
               for a in anns)


def file_hashes(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def is_coco_shape(width, height):
    """The shapes of write_coco_scale: 640x480, 480x640, 640 on the long side, or small."""
    return (max(width, height) == 640 and min(width, height) >= 360
            or (width, height) == (height + 100, height) and 180 <= height < 320)


def test_layout_and_image_records(sample):
    root, _, summary, _, generator = sample
    counts = GENERATORS[generator][2]
    assert sorted(p.name for p in root.iterdir()) == ["annotations", *SPLITS]
    assert sorted(p.name for p in (root / "annotations").iterdir()) == [
        "instances_train2014.json", "instances_val2014.json"]
    all_ids = []
    for split, expected_count in zip(SPLITS, counts):
        coco = load(root, split)
        assert sorted(coco) == ["annotations", "categories", "images", "info", "licenses"]
        names = [im["file_name"] for im in coco["images"]]
        assert len(names) == expected_count == summary[split]["images"]
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(names)
        for im in coco["images"]:
            assert set(im) == {"id", "file_name", "width", "height", "license", "coco_url",
                               "flickr_url", "date_captured"}
            assert im["file_name"] == f"COCO_{split}_{im['id']:012d}.jpg"
            if generator == "scale":
                assert is_coco_shape(im["width"], im["height"]), im
            else:
                assert 320 <= im["width"] <= 640 and 320 <= im["height"] <= 640
            all_ids.append(im["id"])
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            assert set(ann) == {"id", "image_id", "category_id", "segmentation", "area",
                                "bbox", "iscrowd"}
            x, y, w, h = ann["bbox"]
            image = images[ann["image_id"]]
            assert 0 <= x and 0 <= y and x + w <= image["width"] and y + h <= image["height"]
    assert len(all_ids) == len(set(all_ids)), "image ids must be unique across splits"
    ann_ids = [a["id"] for split in SPLITS for a in load(root, split)["annotations"]]
    assert len(ann_ids) == len(set(ann_ids))


def test_categories_are_the_80_real_ones(sample):
    root = sample[0]
    assert len(COCO_CATEGORIES) == 80
    ids = [c["id"] for c in COCO_CATEGORIES]
    assert ids == sorted(ids) and len(set(c["name"] for c in COCO_CATEGORIES)) == 80
    assert set(range(1, 91)) - set(ids) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    by_id = {c["id"]: (c["supercategory"], c["name"]) for c in COCO_CATEGORIES}
    assert by_id[1] == ("person", "person")
    assert by_id[13] == ("outdoor", "stop sign")
    assert by_id[67] == ("furniture", "dining table")
    assert by_id[90] == ("indoor", "toothbrush")
    for split in SPLITS:
        assert load(root, split)["categories"] == list(COCO_CATEGORIES)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2
def test_pycocotools_reads_masks_and_crowd_area_matches(sample):
    root = sample[0]
    crowds = 0
    for split in SPLITS:
        coco = COCO(str(root / "annotations" / f"instances_{split}.json"))
        for ann in coco.dataset["annotations"]:
            mask = coco.annToMask(ann)
            image = coco.imgs[ann["image_id"]]
            assert mask.shape == (image["height"], image["width"])
            if ann["iscrowd"]:
                crowds += 1
                assert ann["category_id"] == 1
                assert set(ann["segmentation"]) == {"counts", "size"}
                assert isinstance(ann["segmentation"]["counts"], list)  # uncompressed RLE
                assert ann["segmentation"]["size"] == [image["height"], image["width"]]
                assert mask.sum() == ann["area"]
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                assert ann["bbox"] == [cols[0], rows[0], cols[-1] + 1 - cols[0],
                                       rows[-1] + 1 - rows[0]]
            elif ann["area"] > 2000:  # polygons: shoelace area ~ rasterised area
                assert abs(mask.sum() - ann["area"]) < 0.03 * ann["area"]
    assert crowds >= 2


def test_special_cases_have_their_property(sample):
    root, _, summary, _, _ = sample
    for split in SPLITS:
        coco = load(root, split)
        images = {im["file_name"]: im for im in coco["images"]}
        by_image = annotations_by_image(coco)
        cases = summary[split]
        for case in (*FORMAT_CASES, "crowd", "no_annotations", "small_person_only",
                     "person_and_objects"):
            assert cases[case], f"{split}: no {case} image"

        def opened(name, split=split, images=images):
            image = Image.open(root / split / name)
            image.load()
            assert image.size == (images[name]["width"], images[name]["height"])
            return image

        # write_coco_scale makes 0.3% of the other images grayscale too, as COCO has some.
        (gray, *more_gray), (cmyk,), (png,), (corrupt,) = (cases[c] for c in FORMAT_CASES)
        for name in more_gray:
            assert (opened(name).format, opened(name).mode) == ("JPEG", "L")
        assert (opened(gray).format, opened(gray).mode) == ("JPEG", "L")
        assert (opened(cmyk).format, opened(cmyk).mode) == ("JPEG", "CMYK")
        assert png.endswith(".jpg") and opened(png).format == "PNG"
        data = (root / split / corrupt).read_bytes()
        assert data[:2] == b"\xff\xd8" and len(data) == 200  # a JPEG cut short
        with pytest.raises(OSError):
            Image.open(root / split / corrupt).load()
        for name in set(images) - {gray, *more_gray, cmyk, png, corrupt}:
            assert (opened(name).format, opened(name).mode) == ("JPEG", "RGB")

        def anns(name, by_image=by_image, images=images):
            return by_image[images[name]["id"]]

        for name in cases["crowd"]:
            assert any(a["iscrowd"] == 1 and a["category_id"] == 1 for a in anns(name))
        for name in cases["no_annotations"]:
            assert anns(name) == []
        for name in cases["small_person_only"]:
            persons = [a for a in anns(name) if a["category_id"] == 1]
            assert persons and not has_person_label(images[name], persons)
        for name in cases["person_and_objects"]:
            assert has_person_label(images[name], anns(name))
            assert any(a["category_id"] != 1 for a in anns(name))


def test_about_half_of_the_images_have_a_person(sample):
    root, _, summary, _, _ = sample
    for split in SPLITS:
        coco = load(root, split)
        by_image = annotations_by_image(coco)
        labels = [has_person_label(im, by_image[im["id"]]) for im in coco["images"]]
        assert sum(labels) == summary[split]["person_images"]
        assert 0.35 <= np.mean(labels) <= 0.65


def test_same_arguments_give_identical_bytes(sample, tmp_path):
    """For write_coco_scale: in one process the bytes of two worker processes."""
    root, zip_dir, _, md5s, generator = sample
    write, kwargs, _ = GENERATORS[generator]
    write(tmp_path / "coco", **{**kwargs, "workers": 1} if generator == "scale" else kwargs)
    assert write_sample_zips(tmp_path / "coco", tmp_path / "zips") == md5s
    assert file_hashes(tmp_path / "coco") == file_hashes(root)
    assert file_hashes(tmp_path / "zips") == file_hashes(zip_dir)


def test_zips_are_laid_out_like_coco_downloads(sample):
    root, zip_dir, _, md5s, _ = sample
    assert sorted(p.name for p in zip_dir.iterdir()) == sorted(ZIPS) == sorted(md5s)
    for name in ZIPS:
        assert hashlib.md5((zip_dir / name).read_bytes()).hexdigest() == md5s[name]
    expected = {f"{split}.zip": sorted(f"{split}/{p.name}" for p in (root / split).iterdir())
                for split in SPLITS}
    expected["annotations_trainval2014.zip"] = [
        "annotations/instances_train2014.json", "annotations/instances_val2014.json"]
    for name, members in expected.items():
        with zipfile.ZipFile(zip_dir / name) as archive:
            assert archive.namelist() == members
            for info in archive.infolist():
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.compress_type == (zipfile.ZIP_DEFLATED if name.startswith("annot")
                                              else zipfile.ZIP_STORED)
                assert archive.read(info) == (root / info.filename).read_bytes()


def _crops_and_brightness(root, split):
    """24x24 grayscale bbox crops of labelled persons and of objects in person-free images,
    and (mean brightness, person label) of every readable image."""
    coco = load(root, split)
    by_image = annotations_by_image(coco)
    persons, objects, brightness, labels = [], [], [], []
    for im in coco["images"]:
        try:
            gray = Image.open(root / split / im["file_name"]).convert("L")
        except OSError:
            continue  # the corrupt image
        anns = by_image[im["id"]]
        label = has_person_label(im, anns)
        brightness.append(np.asarray(gray, float).mean())
        labels.append(label)
        person_free = all(a["category_id"] != 1 for a in anns)
        for a in anns:
            x, y, w, h = (int(v) for v in a["bbox"])
            crop = np.asarray(gray.crop((x, y, x + w, y + h)).resize((24, 24)), float)
            if a["category_id"] == 1 and not a["iscrowd"] and label:
                persons.append(crop)
            elif a["category_id"] != 1 and person_free:
                objects.append(crop)
    return np.array(persons), np.array(objects), np.array(brightness), np.array(labels)


def _texture(crops):
    """Mean absolute difference between vertically neighbouring pixels of each crop."""
    return np.abs(np.diff(crops, axis=1)).mean(axis=(1, 2))


@pytest.mark.parametrize("sample", ["sample"], indirect=True)  # what the tests train on
def test_person_is_learnable_from_grayscale_but_not_from_brightness(sample):
    root = sample[0]
    train_p, train_o, train_b, train_l = _crops_and_brightness(root, "train2014")
    val_p, val_o, _, _ = _crops_and_brightness(root, "val2014")
    assert len(train_p) > 40 and len(train_o) > 40
    # Persons and objects look different on average in grayscale.
    assert np.abs(train_p.mean(0) - train_o.mean(0)).mean() > 3
    # A texture threshold fitted on train separates val crops almost perfectly.
    threshold = (np.median(_texture(train_p)) + np.median(_texture(train_o))) / 2
    correct = (_texture(val_p) > threshold).sum() + (_texture(val_o) <= threshold).sum()
    assert correct / (len(val_p) + len(val_o)) > 0.95
    # But no threshold on whole-image mean brightness predicts the label well.
    best = max(max(np.mean((train_b >= t) == train_l), np.mean((train_b < t) == train_l))
               for t in train_b)
    assert best < 0.7


def test_cli_writes_sample_and_prints_md5_yaml(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(tmp_path / "coco"),
         "--zips", str(tmp_path / "zips"), "--train-images", "8", "--val-images", "9",
         "--seed", "7"],
        capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "coco_md5:"
    printed = dict(re.fullmatch(r"  (\S+): ([0-9a-f]{32})", line).groups() for line in lines[1:])
    assert sorted(printed) == sorted(ZIPS)
    for name, md5 in printed.items():
        assert hashlib.md5((tmp_path / "zips" / name).read_bytes()).hexdigest() == md5
    assert len(list((tmp_path / "coco" / "val2014").iterdir())) == 9
    assert not list(tmp_path.rglob("*.partial"))
    assert "train2014: 8 images" in result.stderr


def test_cli_scale_has_coco_annotation_counts_and_image_shapes(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "--output", str(tmp_path / "coco"),
         "--train-images", "400", "--val-images", "8", "--workers", "2"],
        capture_output=True, text=True, check=True)
    assert result.stdout == ""
    coco = load(tmp_path / "coco", "train2014")
    assert "train2014: 400 images, " in result.stderr
    # COCO 2014 train: 604,907 annotations on 82,783 images, 7.3 per image.
    assert 6.5 < len(coco["annotations"]) / 400 < 8.5
    shapes = [(im["width"], im["height"]) for im in coco["images"]]
    assert all(is_coco_shape(*shape) for shape in shapes)
    assert 0.45 < shapes.count((640, 480)) / 400 < 0.65  # 55% as in COCO


def test_workers_are_for_the_scale_option_only(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(tmp_path), "--workers", "1"],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert "--workers is for --scale" in result.stderr


def test_too_few_images_for_the_special_cases_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 8"):
        write_sample_coco(tmp_path, train_images=7)


def largest_person_shares(root, split):
    """{position in id order: the largest person outline's share of the image} of the
    images of `split` labelled person (an outline over 0.5% of the image), from the JSON."""
    instances = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
    images = sorted(instances["images"], key=lambda image: image["id"])
    areas = {}
    for ann in instances["annotations"]:
        if ann["category_id"] == 1:
            areas.setdefault(ann["image_id"], []).append(ann["area"])
    shares = {position: max(areas.get(image["id"], [0])) / (image["width"] * image["height"])
              for position, image in enumerate(images)}
    return {position: share for position, share in shares.items() if share > 0.005}


def test_small_persons_replace_the_large_ones_when_asked(tmp_path):
    """small_person_share=1: every person image past the fixed special cases holds one
    person of 0.6-2% of the image (labelled person all the same); 0: none does."""
    special = len(FORMAT_CASES) + 4  # then the content cases: crowd, no_annotations, ...
    for share in (0.0, 1.0):
        write_sample_coco(tmp_path / str(share), train_images=60, val_images=40, seed=5,
                          small_person_share=share)
    for split in SPLITS:
        for share, low, high in ((0.0, 0.02, 1.0), (1.0, 0.006, 0.02)):
            persons = largest_person_shares(tmp_path / str(share), split)
            ordinary = [persons[p] for p in sorted(persons) if p >= special]
            assert len(ordinary) >= 6 and all(low <= s <= high for s in ordinary), ordinary
