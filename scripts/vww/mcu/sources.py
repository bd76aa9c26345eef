"""TFLM's source tree from verified archives, laid out as TFLM's own Makefile expects.

tflite-micro's build fetches flatbuffers, gemmlowp, ruy, kissfft, CMSIS 6, Cortex_DFP and
CMSIS-NN into tensorflow/lite/micro/tools/make/downloads/ (third_party_downloads.inc,
ext_libs/*_download.sh) and patches flatbuffers and kissfft there; it skips any that is
already in place. Unpacking the same archives at the same places, with the same patches,
gives the tree its Makefile would build, without network access.
"""

import shutil
import subprocess
import tarfile
from pathlib import Path

DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")

# The config's archive names (tflm_sources.archives) -> where TFLM's build puts each,
# relative to the tflite-micro tree ("." is the tree itself), and the TFLM patch it applies.
PLACES = {
    "tflite-micro": (Path("."), None),
    "flatbuffers": (DOWNLOADS / "flatbuffers",
                    "tensorflow/lite/micro/tools/make/flatbuffers.patch"),
    "gemmlowp": (DOWNLOADS / "gemmlowp", None),
    "ruy": (DOWNLOADS / "ruy", None),
    "kissfft": (DOWNLOADS / "kissfft", "third_party/kissfft/kissfft.patch"),
    "cmsis": (DOWNLOADS / "cmsis", None),
    "cortex_dfp": (DOWNLOADS / "cmsis/Cortex_DFP", None),
    "cmsis_nn": (DOWNLOADS / "cmsis_nn", None),
}


def _top_folder(archive):
    """The one folder every member of a `git archive --prefix=NAME/` tarball is under."""
    with tarfile.open(archive) as tar:
        tops = {Path(member.name).parts[0] for member in tar.getmembers()}
    if len(tops) != 1:
        raise ValueError(f"{archive}: not one top folder but {len(tops)}")
    return tops.pop()


def _unpack(archive, destination, scratch):
    """Unpack the archive's top folder as `destination` (which must not exist)."""
    top = _top_folder(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(scratch / top), str(destination))


def unpack_tree(archives, output):
    """Unpack {name: archive path} (names of PLACES; tflite-micro first) into the TFLM tree
    `output` (which must not exist), applying TFLM's patches as its download scripts do."""
    unknown = sorted(set(archives) - set(PLACES))
    if unknown:
        raise ValueError(f"unknown archive name(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(PLACES))}")
    if "tflite-micro" not in archives:
        raise ValueError("no tflite-micro archive")
    output = Path(output)
    scratch = output.parent / f".{output.name}.unpack"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        # The tree first, then each download inside it (Cortex_DFP inside cmsis).
        for name in sorted(archives, key=lambda n: len(PLACES[n][0].parts)):
            place, patch = PLACES[name]
            destination = output if place == Path(".") else output / place
            _unpack(archives[name], destination, scratch)
            if name == "flatbuffers":  # flatbuffers_download.sh: delete_build_files
                for build_file in [*destination.rglob("BUILD"), *destination.rglob("BUILD.bazel")]:
                    build_file.unlink()
            if patch:
                subprocess.run(["patch", "-p1", "--quiet", "-d", str(destination),
                                "-i", str((output / patch).resolve())],
                               check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
