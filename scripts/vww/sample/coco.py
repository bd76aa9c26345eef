"""A small synthetic dataset in the exact COCO 2014 layout, for CI and for trying the workflow.

It has the real file names, annotation JSON structure and the 80 real categories, plus the
awkward cases of the real download (grayscale and CMYK JPEGs, PNG bytes under a .jpg name,
an unreadable file, crowd annotations, images without annotations, tiny persons).

The pictures are drawn so that "person" can be learned from 96x96 grayscale by shape and
texture alone: a person is an upright figure (head, torso, arms, legs) filled with
high-contrast horizontal stripes; other objects are flat-filled rectangles, triangles and wide
ellipses; backgrounds are smooth gradients with mild noise. The brightness of everything
varies, so mean brightness does not give the label away.

write_coco_scale writes the same kind of pictures at COCO 2014's own scale, to rehearse the
main job at full size: 82,783 / 40,504 images by default, COCO's mix of image sizes (mostly
640x480 and 480x640), about 7 annotations per image with polygons of COCO's length, crowd
RLE masks and a few grayscale images. Each image has a random generator of its own, so
worker processes make them in parallel and the bytes do not depend on the number of workers.

Only numpy, Pillow and the standard library are used. The same arguments give byte-identical
files with the same numpy and Pillow versions (their bundled libjpeg and zlib produce the
bytes): one seeded numpy Generator drives everything, Pillow's encoders are deterministic for
fixed settings, JSON is written with sorted keys and zips with fixed metadata.
"""

import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

# The 80 COCO 2014 categories with their real ids (1..90, with the real gaps).
_CATEGORY_TABLE = (
    ("person", ((1, "person"),)),
    ("vehicle", ((2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
                 (7, "train"), (8, "truck"), (9, "boat"))),
    ("outdoor", ((10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
                 (14, "parking meter"), (15, "bench"))),
    ("animal", ((16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
                (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"))),
    ("accessory", ((27, "backpack"), (28, "umbrella"), (31, "handbag"), (32, "tie"),
                   (33, "suitcase"))),
    ("sports", ((34, "frisbee"), (35, "skis"), (36, "snowboard"), (37, "sports ball"),
                (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"),
                (42, "surfboard"), (43, "tennis racket"))),
    ("kitchen", ((44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"),
                 (50, "spoon"), (51, "bowl"))),
    ("food", ((52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
              (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"))),
    ("furniture", ((62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"),
                   (67, "dining table"), (70, "toilet"))),
    ("electronic", ((72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
                    (77, "cell phone"))),
    ("appliance", ((78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
                   (82, "refrigerator"))),
    ("indoor", ((84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
                (89, "hair drier"), (90, "toothbrush"))),
)
COCO_CATEGORIES = tuple({"supercategory": sup, "id": cid, "name": name}
                        for sup, cats in _CATEGORY_TABLE for cid, name in cats)
PERSON_ID = 1
_OTHER_IDS = tuple(c["id"] for c in COCO_CATEGORIES if c["id"] != PERSON_ID)

SPLITS = ("train2014", "val2014")
SMALL_OBJECT_AREA = 0.005  # VWW: a person counts when area / image area exceeds this
# A small person's outline area, as a share of the image: labelled person (above
# SMALL_OBJECT_AREA), its box under about 5% of the image, COCO's hard cases.
SMALL_PERSON_AREA = (0.006, 0.02)
JPEG_QUALITY = 90
_MAX_COCO_IMAGE_ID = 581929  # ids are drawn from the real COCO 2014 id range

# Special cases sit at fixed positions of each split (images sorted by id). The first four
# are about the file format and get ordinary content; the next four are about content.
_FORMAT_CASES = ("grayscale", "cmyk", "png_as_jpg", "corrupt")
_CONTENT_CASES = ("crowd", "no_annotations", "small_person_only", "person_and_objects")
MIN_IMAGES_PER_SPLIT = len(_FORMAT_CASES) + len(_CONTENT_CASES)
_CORRUPT_BYTES = 200  # the unreadable image is a JPEG cut after this many bytes


def _atomic_write(path, data):
    """Write bytes under a temporary name and rename, so a file that exists is complete."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _json_bytes(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _shade(rng, low, high):
    """An RGB colour of brightness in [low, high] with a random tint."""
    return np.clip(rng.uniform(low, high) + rng.uniform(-40, 40, 3), 0, 255)


def _background(rng, w, h):
    """Linear gradient between two colours in a random direction, plus mild noise."""
    c0, c1 = (tuple(int(c) for c in _shade(rng, 0, 255)) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    t = (np.arange(w, dtype=np.float32)[None, :] * math.cos(angle)
         + np.arange(h, dtype=np.float32)[:, None] * math.sin(angle))
    t = (t - t.min()) * (255 / (t.max() - t.min()))
    # Blending and adding noise in Pillow (C) keeps 240 images well under 10 s.
    image = Image.composite(Image.new("RGB", (w, h), c1), Image.new("RGB", (w, h), c0),
                            Image.fromarray(t.astype(np.uint8), "L"))
    noise = Image.fromarray(rng.integers(0, 13, (h, w), dtype=np.uint8), "L").convert("RGB")
    return ImageChops.add(image, noise, offset=-6)  # gray noise, +-6 levels


def _shoelace(points):
    x, y = np.asarray(points).T
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


def _annotation(category_id, segmentation, area, bbox, iscrowd=0):
    return {"category_id": category_id, "segmentation": segmentation, "area": area,
            "bbox": [round(float(v), 2) for v in bbox], "iscrowd": iscrowd}


def _polygon_annotation(category_id, polygons):
    """Annotation of one object made of polygons [(x, y), ...], area by the shoelace formula."""
    xs = [x for poly in polygons for x, _ in poly]
    ys = [y for poly in polygons for _, y in poly]
    x0, y0 = min(xs), min(ys)
    return _annotation(category_id, [[c for point in poly for c in point] for poly in polygons],
                       round(sum(_shoelace(poly) for poly in polygons), 2),
                       (x0, y0, max(xs) - x0, max(ys) - y0))


def _unit_figure(rng):
    """A person of height ~1 (feet at y=1, centred on x=0): [head, body] polygons."""
    hand_x, hand_y = rng.uniform(0.24, 0.32), rng.uniform(0.45, 0.58)
    foot, crotch = rng.uniform(0.10, 0.18), rng.uniform(0.58, 0.66)
    # Right half from the shoulder to the inner edge of the foot; the body mirrors it.
    right = [(0.16, 0.2), (hand_x, hand_y), (hand_x - 0.07, hand_y + 0.03), (0.12, 0.36),
             (0.12, 0.6), (foot, 1.0), (foot - 0.08, 1.0)]
    body = right + [(0.0, crotch)] + [(-x, y) for x, y in reversed(right)]
    head = [(0.09 * math.cos(a), 0.11 + 0.09 * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
    stretch = rng.uniform(0.85, 1.15)  # thinner or broader
    return [[(x * stretch, y) for x, y in poly] for poly in (head, body)]


_HALF_WIDTH = 0.32 * 1.15  # widest reach of a unit figure (hands, broadest stretch)


def _max_height(w, h):
    """Height of the largest figure that fits into a w x h image."""
    return min(0.95 * h, 0.95 * w / (2 * _HALF_WIDTH))


def _scale(unit, height, cx, top):
    return [[(round(cx + x * height, 2), round(top + y * height, 2)) for x, y in poly]
            for poly in unit]


def _paint_person(rng, image, polygons):
    """Fill the figure with horizontal stripes of a dark and a light colour."""
    xs = [x for poly in polygons for x, _ in poly]
    ys = [y for poly in polygons for _, y in poly]
    x0, y0 = int(min(xs)), int(min(ys))
    size = (int(max(xs)) + 2 - x0, int(max(ys)) + 2 - y0)
    mask = Image.new("L", size)
    draw = ImageDraw.Draw(mask)
    for poly in polygons:
        draw.polygon([(x - x0, y - y0) for x, y in poly], fill=255)
    dark, light = _shade(rng, 0, 70), _shade(rng, 185, 255)
    period = (max(ys) - min(ys)) / rng.uniform(4, 7)  # 4-7 dark/light pairs over the height
    rows = np.arange(size[1]) + rng.uniform(0, period)
    colours = np.where(((rows // (period / 2)) % 2 == 0)[:, None], dark, light).astype(np.uint8)
    stripes = np.ascontiguousarray(np.broadcast_to(colours[:, None, :], (size[1], size[0], 3)))
    image.paste(Image.fromarray(stripes, "RGB"), (x0, y0), mask)


def _add_person(rng, image, anns, height_frac=None, area_frac=None):
    """A person at a random place, sized as a fraction of the largest height that fits
    (height_frac) or by its area as a fraction of the image area (area_frac)."""
    w, h = image.size
    unit = _unit_figure(rng)
    if area_frac is None:
        height = height_frac * _max_height(w, h)
    else:
        unit_area = sum(_shoelace(poly) for poly in unit)
        height = min(_max_height(w, h), math.sqrt(area_frac * w * h / unit_area))
    margin = _HALF_WIDTH * height + 1
    polygons = _scale(unit, height, rng.uniform(margin, w - margin),
                      rng.uniform(1, h - height - 1))
    _paint_person(rng, image, polygons)
    anns.append(_polygon_annotation(PERSON_ID, polygons))


def _add_object(rng, image, anns, ellipse_vertices=24):
    """A flat-filled rectangle, triangle or wide ellipse of a random non-person category."""
    w, h = image.size
    kind = rng.integers(3)
    aspect = (math.exp(rng.uniform(math.log(0.5), math.log(3))), rng.uniform(0.7, 1.6),
              rng.uniform(1.5, 3.0))[kind]  # width / height
    area = rng.uniform(0.01, 0.12) * w * h
    bw, bh = min(0.9 * w, math.sqrt(area * aspect)), min(0.9 * h, math.sqrt(area / aspect))
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    if kind == 0:
        points = [(x0, y0), (x0 + bw, y0), (x0 + bw, y0 + bh), (x0, y0 + bh)]
    elif kind == 1:
        points = [(x0 + rng.uniform(0, bw), y0), (x0 + bw, y0 + bh), (x0, y0 + bh)]
    else:
        points = [(x0 + bw / 2 * (1 + math.cos(a)), y0 + bh / 2 * (1 + math.sin(a)))
                  for a in np.linspace(0, 2 * math.pi, ellipse_vertices, endpoint=False)]
    points = [(round(x, 2), round(y, 2)) for x, y in points]
    ImageDraw.Draw(image).polygon(points, fill=tuple(int(c) for c in _shade(rng, 0, 255)))
    anns.append(_polygon_annotation(int(rng.choice(_OTHER_IDS)), [points]))


def _rle(mask):
    """Uncompressed COCO RLE: run lengths over the column-major mask, starting with zeros."""
    flat = mask.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return {"counts": ([0] if flat[0] else []) + runs, "size": list(mask.shape)}


def _add_crowd(rng, image, anns):
    """A row of overlapping persons annotated as one iscrowd=1 region (RLE mask)."""
    w, h = image.size
    count, height = int(rng.integers(4, 8)), rng.uniform(0.4, 0.7) * _max_height(w, h)
    margin = _HALF_WIDTH * height + 1
    feet = rng.uniform(height + 1, h - 1)  # common ground line
    mask = Image.new("L", (w, h))
    for cx in np.linspace(margin, w - margin, count):
        figure_height = height * rng.uniform(0.85, 1.0)
        figure = _scale(_unit_figure(rng), figure_height, cx, feet - figure_height)
        _paint_person(rng, image, figure)
        for poly in figure:
            ImageDraw.Draw(mask).polygon(poly, fill=1)
    region = np.array(mask, dtype=bool)
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    bbox = (cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0])
    anns.append(_annotation(PERSON_ID, _rle(region), int(region.sum()), bbox, iscrowd=1))


def _draw(rng, plan, w, h, small_person_share=0.0):
    """Render one image of the given plan; returns (RGB image, annotations without ids).
    A `small_person_share` of the "person" plans get one small person instead (see
    write_sample_coco); 0 draws nothing more, so the default sample stays as it was."""
    image, anns = _background(rng, w, h), []
    fewest, most = {"empty": (0, 0), "no_annotations": (0, 0), "objects": (1, 4),
                    "person": (0, 2), "person_and_objects": (1, 3), "small_person_only": (0, 2),
                    "crowd": (0, 1)}[plan]  # how many non-person objects
    for _ in range(rng.integers(fewest, most, endpoint=True)):
        _add_object(rng, image, anns)
    if plan == "person" and small_person_share and rng.random() < small_person_share:
        _add_person(rng, image, anns, area_frac=rng.uniform(*SMALL_PERSON_AREA))
    elif plan == "person":  # one large person, maybe a second of any size
        _add_person(rng, image, anns, height_frac=rng.uniform(0.55, 1.0))
        if rng.random() < 0.3:
            _add_person(rng, image, anns, height_frac=rng.uniform(0.3, 0.8))
    elif plan == "person_and_objects":
        _add_person(rng, image, anns, height_frac=rng.uniform(0.55, 1.0))
    elif plan == "small_person_only":  # every person clearly below the VWW area threshold
        for _ in range(rng.integers(1, 3)):
            _add_person(rng, image, anns, area_frac=rng.uniform(0.001, 0.003))
    elif plan == "crowd":
        _add_crowd(rng, image, anns)
    return image, anns


def _encode(image, case):
    """File bytes of an image; `case` is one of _FORMAT_CASES or None for an RGB JPEG."""
    out = io.BytesIO()
    if case == "png_as_jpg":
        image.save(out, format="PNG")
        return out.getvalue()
    mode = {"grayscale": "L", "cmyk": "CMYK"}.get(case, "RGB")
    image.convert(mode).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()[:_CORRUPT_BYTES] if case == "corrupt" else out.getvalue()


def _plans(rng, n):
    """Content plan of each image: special cases at fixed positions, half with a person."""
    plans = [None] * n
    for i, case in enumerate(_CONTENT_CASES, start=len(_FORMAT_CASES)):
        plans[i] = case
    free = [i for i in range(n) if plans[i] is None]
    wanted = n // 2 - sum(p in ("crowd", "person_and_objects") for p in plans)
    has_person = rng.permutation(len(free)) < wanted
    for i, person in zip(free, has_person):
        plans[i] = "person" if person else ("empty" if rng.random() < 0.2 else "objects")
    return plans


def _summary(coco, format_files):
    """Counts and file names of the special cases of one split (for tests and logs)."""
    by_image = {im["id"]: [] for im in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    summary = {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
               "person_images": 0, **format_files,
               **{case: [] for case in _CONTENT_CASES}}
    for im in coco["images"]:
        anns, name = by_image[im["id"]], im["file_name"]
        persons = [a["area"] / (im["width"] * im["height"])
                   for a in anns if a["category_id"] == PERSON_ID]
        labelled = any(frac > SMALL_OBJECT_AREA for frac in persons)
        summary["person_images"] += labelled
        cases = {"crowd": any(a["iscrowd"] for a in anns),
                 "no_annotations": not anns,
                 "small_person_only": bool(persons) and not labelled,
                 "person_and_objects": labelled and len(persons) < len(anns)}
        for case, present in cases.items():
            if present:
                summary[case].append(name)
    return summary


def _image_record(rng, split, image_id, w, h):
    captured = (f"2013-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d} "
                f"{rng.integers(24):02d}:{rng.integers(60):02d}:{rng.integers(60):02d}")
    return {"id": image_id, "file_name": f"COCO_{split}_{image_id:012d}.jpg", "width": w,
            "height": h, "license": 1, "coco_url": "", "flickr_url": "",
            "date_captured": captured}


def _write_coco(root, counts, seed, split_images):
    """The frame of both generators: image ids, the split folders, annotation ids, the JSON.

    split_images(rng, split_no, split, sorted_ids) writes a split's image files and yields
    (image record, annotations without ids, format case or None) per image, in id order.
    Annotation files are written last, so a complete annotation file means the images are
    complete too.
    """
    if min(counts.values()) < MIN_IMAGES_PER_SPLIT:
        raise ValueError(f"each split needs at least {MIN_IMAGES_PER_SPLIT} images "
                         f"(one per special case), got {counts}")
    root = Path(root)
    annotation_files = {split: root / "annotations" / f"instances_{split}.json" for split in SPLITS}
    for path in annotation_files.values():  # a rerun must not look complete before it is
        path.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    ids = rng.choice(_MAX_COCO_IMAGE_ID, size=sum(counts.values()), replace=False) + 1
    id_lists = np.split(ids, [counts[SPLITS[0]]])
    categories = [dict(c) for c in COCO_CATEGORIES]
    next_ann_id, summary, documents = 1, {}, {}
    for split_no, (split, split_ids) in enumerate(zip(SPLITS, id_lists)):
        (root / split).mkdir(parents=True, exist_ok=True)
        coco = {"info": {"description": "Synthetic sample in the COCO 2014 format "
                                        "(person-detection workflow test data)",
                         "url": "", "version": "1.0", "year": 2014,
                         "contributor": "make_sample_coco.py", "date_created": "2014-01-01"},
                "licenses": [{"id": 1, "name": "CC0 1.0 (synthetic images)",
                              "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
                "images": [], "annotations": [], "categories": categories}
        format_files = {}
        for record, anns, case in split_images(rng, split_no, split, sorted(split_ids.tolist())):
            coco["images"].append(record)
            for ann in anns:
                coco["annotations"].append({"id": next_ann_id, "image_id": record["id"], **ann})
                next_ann_id += 1
            if case:
                format_files.setdefault(case, []).append(record["file_name"])
        documents[split] = coco
        summary[split] = _summary(coco, format_files)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, coco in documents.items():
        _atomic_write(annotation_files[split], _json_bytes(coco))
    return summary


def write_sample_coco(root, *, train_images=160, val_images=80, seed=2014,
                      small_person_share=0.0):
    """Write a synthetic COCO 2014 dataset under `root`; return a summary per split.

    `small_person_share` of the images with a person hold one small person instead of a
    large one (outline area SMALL_PERSON_AREA of the image); 0, the default, gives the
    sample as it always was.

    Layout: root/{train2014,val2014}/COCO_<split>_%012d.jpg and
    root/annotations/instances_{train2014,val2014}.json. Files of the same names are
    replaced; other files already under `root` are left alone.

    Summary: {split: {"images", "annotations", "person_images" (VWW label 1): int,
    "grayscale", "cmyk", "png_as_jpg", "corrupt" (file format cases), "crowd",
    "no_annotations", "small_person_only", "person_and_objects" (content cases):
    sorted lists of file names}}.
    """
    root = Path(root)

    def split_images(rng, split_no, split, image_ids):
        for index, (image_id, plan) in enumerate(zip(image_ids, _plans(rng, len(image_ids)))):
            w, h = (int(v) for v in rng.integers(320, 641, size=2))
            record = _image_record(rng, split, image_id, w, h)
            image, anns = _draw(rng, plan, w, h, small_person_share)
            case = _FORMAT_CASES[index] if index < len(_FORMAT_CASES) else None
            _atomic_write(root / split / record["file_name"], _encode(image, case))
            yield record, anns, case

    return _write_coco(root, dict(zip(SPLITS, (train_images, val_images))), seed, split_images)


# COCO 2014's scale, for write_coco_scale. Images per split; the shares of image shapes
# (COCO's images are at most 640 px, most of them 640x480 or 480x640); about 7 annotations
# per image, persons in about 45% of the images, crowd regions in about 1%, and some images
# grayscale.
COCO_2014_IMAGES = {"train2014": 82783, "val2014": 40504}
_COCO_SHAPES = (("640x480", 0.55), ("480x640", 0.15), ("landscape", 0.20),
                ("portrait", 0.05), ("small", 0.05))
_COCO_PLANS = (("person", 0.44), ("small_person_only", 0.02), ("crowd", 0.01),
               ("no_annotations", 0.01), ("objects", 0.52))
_GRAYSCALE_SHARE = 0.003


def _pick(rng, table):
    """A name from ((name, share), ...) tables whose shares add up to 1."""
    names, shares = zip(*table)
    return names[int(rng.choice(len(names), p=shares))]


def _coco_image_size(rng):
    shape = _pick(rng, _COCO_SHAPES)
    # The shorter side of a landscape or portrait image; halved, the height of a small one.
    side = int(rng.integers(360, 640))
    return {"640x480": (640, 480), "480x640": (480, 640), "landscape": (640, side),
            "portrait": (side, 640), "small": (side // 2 + 100, side // 2)}[shape]


def _draw_coco_scene(rng, plan, w, h):
    """Like _draw, with COCO's numbers: more objects per image, several persons, and
    ellipse outlines of COCO's polygon length (the instances JSON gets COCO's order of size)."""
    image, anns = _background(rng, w, h), []
    objects = 0 if plan == "no_annotations" else int(rng.poisson(7.5 if plan == "objects" else 5))
    if plan in ("objects", "person_and_objects"):
        objects = max(objects, 1)
    for _ in range(objects):
        _add_object(rng, image, anns, ellipse_vertices=int(rng.integers(32, 128)))
    if plan in ("person", "person_and_objects"):
        for index in range(1 + rng.poisson(1.5)):
            _add_person(rng, image, anns, height_frac=rng.uniform(0.2, 0.8) if index else
                        rng.uniform(0.5, 1.0))
    elif plan == "small_person_only":
        for _ in range(rng.integers(1, 4)):
            _add_person(rng, image, anns, area_frac=rng.uniform(0.001, 0.003))
    elif plan == "crowd":
        _add_crowd(rng, image, anns)
    return image, anns


def _coco_scale_image(task):
    """Write one image of write_coco_scale (in a worker process); return what
    split_images yields. Its random generator is seeded by (seed, split, index) alone."""
    root, seed, split_no, split, index, image_id = task
    rng = np.random.default_rng((seed, split_no, index))
    w, h = _coco_image_size(rng)
    record = _image_record(rng, split, image_id, w, h)
    special = (_FORMAT_CASES + _CONTENT_CASES)[index] if index < MIN_IMAGES_PER_SPLIT else None
    plan = special if special in _CONTENT_CASES else _pick(rng, _COCO_PLANS)
    image, anns = _draw_coco_scene(rng, plan, w, h)
    case = (special if special in _FORMAT_CASES
            else "grayscale" if rng.random() < _GRAYSCALE_SHARE else None)
    _atomic_write(Path(root) / split / record["file_name"], _encode(image, case))
    return record, anns, case


def write_coco_scale(root, *, train_images=COCO_2014_IMAGES["train2014"],
                     val_images=COCO_2014_IMAGES["val2014"], seed=2014, workers=None):
    """Write a synthetic COCO 2014 of COCO's size under `root` with `workers` processes
    (default: every CPU); return a summary per split, as write_sample_coco does.

    Same layout and special cases as write_sample_coco, at COCO's image sizes and
    annotation counts. The bytes depend on the arguments, not on the number of workers.
    """
    root = Path(root)
    workers = workers or os.cpu_count()
    with (multiprocessing.Pool(workers) if workers > 1 else contextlib.nullcontext()) as pool:

        def split_images(rng, split_no, split, image_ids):
            tasks = ((str(root), seed, split_no, split, index, image_id)
                     for index, image_id in enumerate(image_ids))
            if pool:
                yield from pool.imap(_coco_scale_image, tasks, chunksize=64)
            else:
                yield from map(_coco_scale_image, tasks)

        return _write_coco(root, dict(zip(SPLITS, (train_images, val_images))), seed,
                           split_images)


def write_sample_zips(root, zip_dir):
    """Zip a sample written by write_sample_coco like COCO's downloads; return {zip: md5}.

    train2014.zip holds train2014/<file>, val2014.zip val2014/<file> (the images listed in
    the annotation files) and annotations_trainval2014.zip the two annotation files.
    Members are sorted and have fixed metadata, so the bytes (and md5s) are reproducible.
    """
    root, zip_dir = Path(root), Path(zip_dir)
    zip_dir.mkdir(parents=True, exist_ok=True)
    members = {}
    for split in SPLITS:
        coco = json.loads((root / "annotations" / f"instances_{split}.json").read_bytes())
        members[f"{split}.zip"] = [f"{split}/{im['file_name']}" for im in coco["images"]]
    members["annotations_trainval2014.zip"] = [f"annotations/instances_{s}.json" for s in SPLITS]
    md5s = {}
    for zip_name, names in members.items():
        target = zip_dir / zip_name
        partial = target.with_name(f".{zip_name}.partial")
        # Streamed member by member: the zips of write_coco_scale are gigabytes.
        with zipfile.ZipFile(partial, "w") as archive:
            for name in sorted(names):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.create_system = 3  # Unix, whatever the host
                info.external_attr = 0o644 << 16
                info.compress_type = (zipfile.ZIP_DEFLATED if name.endswith(".json")
                                      else zipfile.ZIP_STORED)
                archive.writestr(info, (root / name).read_bytes())
        with open(partial, "rb") as written:
            md5s[zip_name] = hashlib.file_digest(
                written, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
        os.replace(partial, target)
    return md5s
