"""Image folder datasets -> Visual Wake Words annotations, the same JSON the COCO path writes.

Layout: <root>/<split>/<class name>/<image>, one subfolder per class, the negative class
first in `class_names` (label 0) and the positive one second (label 1). Images are .jpg,
.jpeg or .png files (any case), found at any depth below their class folder. Listings are
sorted, so the annotations (and the shards made from them) never depend on the file system.
A broken link with an image suffix is listed like any image, so the shard stage reports it
as unreadable instead of it vanishing without a word.
"""

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class FolderLayoutError(ValueError):
    """The folder does not hold the split and class subfolders the config names."""


def has_image_suffix(path):
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_image_file(path):
    return path.is_file() and has_image_suffix(path)


def folder_annotations(root, split, class_names):
    """VWW annotations of <root>/<split>: one entry per image, labelled by its class folder.

    Returns (annotations, ignored): ignored lists files that are not images by their suffix.
    Raises FolderLayoutError naming the missing or extra folder, or an empty class.
    """
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise FolderLayoutError(f"{split_dir} does not exist: an image folder dataset needs "
                                f"{root}/<split>/<class name>/ for the splits train and val")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if sorted(class_names) != found:
        raise FolderLayoutError(
            f"{split_dir} holds the class folders {found}, but class_names is "
            f"{list(class_names)}: one folder per class name, and no other folder")

    images, ignored = [], []
    for label, name in enumerate(class_names):
        files = sorted((p for p in (split_dir / name).rglob("*") if not p.is_dir()),
                       key=lambda p: p.relative_to(split_dir).as_posix())
        class_images = [p for p in files if has_image_suffix(p)]
        ignored += [p.relative_to(split_dir).as_posix() for p in files
                    if not has_image_suffix(p)]
        if not class_images:
            raise FolderLayoutError(f"{split_dir / name} holds no .jpg, .jpeg or .png image")
        images += [{"id": len(images) + i, "file_name": p.relative_to(split_dir).as_posix(),
                    "label": label, "objects": []} for i, p in enumerate(class_images, 1)]
    annotations = {
        "info": {
            "description": "Visual Wake Words labels of an image folder",
            "folder": str(root),
            "split": split,
        },
        "categories": [{"id": label, "name": name} for label, name in enumerate(class_names)],
        "images": images,
    }
    return annotations, ignored
