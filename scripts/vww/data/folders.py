"""Image folders: which files are images, and image folder datasets -> Visual Wake Words
annotations, the same JSON the COCO path writes.

A folder's images are its files, at any depth, that Pillow identifies as images by their
content, whatever their names (a .bmp, a .webp, a PNG named .dat). A file that cannot be
opened (a broken link, no permission), or that is named like an image (a suffix of a
format Pillow reads, any case) but is not one, counts as an image that cannot be read: its
reader reports it as it reports that file named alone, so a broken copy does not vanish
without a word. The other files are skipped with the reason. Listings are sorted by
relative path, so the annotations (and the shards made from them) never depend on the
file system.

Dataset layout: <root>/<split>/<class name>/<image>, one subfolder per class, the negative
class first in `class_names` (label 0) and the positive one second (label 1).
"""

import functools
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vww.data.images import DECODE_ERRORS, NOT_AN_IMAGE


class FolderLayoutError(ValueError):
    """The folder does not hold the split and class subfolders the config names."""


@functools.cache
def _image_suffixes():
    """The file name suffixes Pillow registers for the formats it opens (.jpg, .png, ...)."""
    return {suffix for suffix, format_name in Image.registered_extensions().items()
            if format_name in Image.OPEN}


def _skip_reason(path):
    """Why the file at `path` is not taken as an image, or None to take it.

    A name with an image suffix is taken unopened; any other file is identified by
    Image.open, which reads the header only (no pixel is decoded): 0.03-0.04 ms a PNG or
    JPEG, 0.13 ms a text file (every format plugin looks at it), on 1000 files in the page
    cache on this machine.
    """
    if path.exists() and not path.is_file():
        return "not a regular file"  # a FIFO would block the reader
    if path.suffix.lower() in _image_suffixes():
        return None
    try:
        with Image.open(path):
            return None
    except UnidentifiedImageError:
        return NOT_AN_IMAGE
    except DECODE_ERRORS:
        return None  # cannot be opened, or a header Pillow knows but cannot use


def scan_folder(folder):
    """(images, skipped) of the files below `folder`, at any depth, sorted by relative posix
    path: images are paths, skipped are (path, reason) (see the module's docstring)."""
    files = sorted((p for p in Path(folder).rglob("*") if not p.is_dir()),
                   key=lambda p: p.relative_to(folder).as_posix())
    images, skipped = [], []
    for path in files:
        reason = _skip_reason(path)
        if reason is None:
            images.append(path)
        else:
            skipped.append((path, reason))
    return images, skipped


def folder_annotations(root, split, class_names):
    """VWW annotations of <root>/<split>: one entry per image, labelled by its class folder.

    Returns (annotations, skipped): skipped lists the files that are not images, as
    {"file_name", "reason"}. Raises FolderLayoutError naming the missing or extra folder,
    or a class folder without an image.
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

    images, skipped = [], []
    for label, name in enumerate(class_names):
        class_images, class_skipped = scan_folder(split_dir / name)
        skipped += [{"file_name": p.relative_to(split_dir).as_posix(), "reason": reason}
                    for p, reason in class_skipped]
        if not class_images:
            raise FolderLayoutError(f"{split_dir / name} holds no image (no file Pillow reads "
                                    "as one)")
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
    return annotations, skipped
