"""The microcontroller build: TFLM's sources fetched and checked, our generated C files in
the real TFLM build for the host and a Cortex-M, scores against LiteRT, the emulator's
instruction counter on a loop of known length, and the memory split against the ELF."""

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import REPO, SHORT_MODEL, made_once, run, serve_folder, snakemake
from vww.export.litert import input_int8, invoke, load_classifier
from vww.mcu import elf as mcu_elf
from vww.mcu.frames import TEST_FRAMES_DIR, read_bmp_gray, tflm_test_frame
from vww.model import preprocessing

THIRD_PARTY = REPO.parent / "shared" / "third_party"
ARCHIVES = yaml.safe_load((REPO / "config.yaml").read_text())["tflm_sources"]["archives"]
VAL_FRAMES = 6
needs_third_party = pytest.mark.skipif(not THIRD_PARTY.is_dir(),
                                       reason=f"needs the TFLM archives in {THIRD_PARTY}")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
needs_arm = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm")


@pytest.fixture(scope="session")
def third_party_server():
    """An HTTP server on 127.0.0.1 serving ../shared/third_party (a mirror of the archives)."""
    if not THIRD_PARTY.is_dir():
        pytest.skip(f"needs the TFLM archives in {THIRD_PARTY}")
    with serve_folder(THIRD_PARTY) as url:
        yield url


@pytest.fixture(scope="session")
def tflm_tree(third_party_server, tmp_path_factory):
    """Every archive of the config downloaded from the server (a mirror: its own gzip
    bytes), checked by the sha256 of its tree, and unpacked into one TFLM tree."""
    def make(folder):
        flags = []
        for name, entry in sorted(ARCHIVES.items()):
            run("download_file.py", "--url", f"{third_party_server}/{entry['file']}",
                "--tar-tree-sha256", entry["tar_tree_sha256"], "--output",
                folder / entry["file"])
            flags += ["--archive", f"{name}={folder / entry['file']}"]
        run("unpack_tflm_sources.py", *flags, "--output", folder / "tflm")

    folder, _ = made_once(tmp_path_factory, "tflm_sources", make)
    return folder / "tflm"


@pytest.fixture(scope="session")
def model_c_files(exported, evaluated, tmp_path_factory, sample_records):
    """The short model's generated files as the workflow writes them: <c>.cc, <c>.h and
    <c>_settings.h (with its model.json and micro_check.json), in one folder."""
    out, checkpoint = exported

    def make(folder):
        (folder / "labels.txt").write_text("0:background\n1:person\n")
        run("describe_model.py", "--labels", folder / "labels.txt", "--tflite",
            out / "model.tflite", "--tflite-eval", evaluated[1], "--checkpoint", checkpoint,
            *SHORT_MODEL, "--output", folder / "model.json")
        run("check_micro.py", "--tflite", out / "model.tflite", "--records",
            *sample_records[0]["val"], "--num-images", 5, "--output",
            folder / "micro_check.json")
        run("write_model_settings.py", "--model-json", folder / "model.json",
            "--micro-check", folder / "micro_check.json",
            "--output", folder / "c" / "person_detect_model_data_settings.h")
        run("write_c_source.py", "--tflite", out / "model.tflite", "--array-name",
            "g_person_detect_model_data", "--output",
            folder / "c" / "person_detect_model_data.cc")

    folder, _ = made_once(tmp_path_factory, "c", make)
    return folder / "c", out / "model.tflite"


@pytest.fixture(scope="session")
def frames(tflm_tree, model_c_files, sample_records, tmp_path_factory):
    """make_mcu_frames.py's pixels and scores: TFLM's two test frames and VAL_FRAMES val."""
    _, tflite = model_c_files

    def make(folder):
        run("make_mcu_frames.py", "--tflite", tflite, "--tflm", tflm_tree, "--records",
            *sample_records[0]["val"], "--val-frames", VAL_FRAMES, "--output-frames",
            folder / "frames.bin", "--output", folder / "frames.json")

    folder, _ = made_once(tmp_path_factory, "frames", make)
    return folder / "frames.bin", folder / "frames.json"


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digests(folder):
    return {path.name: sha256_of(path) for path in sorted(folder.iterdir())}


def build_library(core, tree, library):
    run("build_tflm_library.py", "--tflm", tree, "--core", core, "--jobs", 2,
        "--output", library)
    return library


def build_firmware(core, tree, library, c_dir, program):
    run("build_firmware.py", "--tflm", tree, "--core", core, "--library", library,
        "--c-source", c_dir / "person_detect_model_data.cc",
        "--array-name", "g_person_detect_model_data", "--jobs", 2, "--output", program)
    return program


def build_and_run(core, tree, c_files, frames, folder, library=None):
    """The core's TFLM library (unless given), the application with the model, its run:
    run.json."""
    c_dir, _ = c_files
    library = library or build_library(core, tree, folder / "libtflm.a")
    before = digests(c_dir)
    program = build_firmware(core, tree, library, c_dir, folder / "firmware.elf")
    assert digests(c_dir) == before  # the generated files, used unchanged
    run("run_firmware.py", "--core", core, "--firmware", program, "--frames", frames[0],
        "--frames-json", frames[1], "--output", folder / "run.json")
    return json.loads((folder / "run.json").read_text())


@pytest.fixture(scope="session")
def m4f_library(tflm_tree, tmp_path_factory):
    """The Cortex-M4F's TFLM library, built once."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs gcc-arm-none-eabi")
    def make(folder):
        build_library("cortex-m4f", tflm_tree, folder / "libtflm.a")

    folder, _ = made_once(tmp_path_factory, "m4f_library", make)
    return folder / "libtflm.a"


def litert_scores(tflite, frames_file, count):
    """LiteRT's int8 scores of the frames file, computed here from its pixels (not from
    make_mcu_frames.py's JSON): the device input of each frame through LiteRT."""
    _, litert = load_classifier(tflite)
    pixels = np.fromfile(frames_file, np.uint8).reshape(count, 96, 96, 1)
    return [invoke(litert, input_int8(litert, preprocessing.frame_input(
        tf.constant(frame), True).numpy()[np.newaxis])).tolist() for frame in pixels]


@pytest.fixture(scope="session")
def host_run(tflm_tree, model_c_files, frames, tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    _, result = made_once(tmp_path_factory, "host", lambda folder: build_and_run(
        "host", tflm_tree, model_c_files, frames, folder))
    return result


@needs_third_party
def test_archives_are_checked_and_unpacked_where_tflm_expects_them(tflm_tree,
                                                                   third_party_server,
                                                                   tmp_path):
    downloads = tflm_tree / "tensorflow/lite/micro/tools/make/downloads"
    assert sorted(p.name for p in downloads.iterdir()) == [
        "cmsis", "cmsis_nn", "flatbuffers", "gemmlowp", "kissfft", "ruy"]
    assert (downloads / "cmsis/Cortex_DFP/Device").is_dir()
    assert (downloads / "cmsis_nn/Include/arm_nnfunctions.h").is_file()
    # TFLM's patches, as its download scripts apply them.
    assert "#define FLATBUFFERS_LOCALE_INDEPENDENT 0" in (
        downloads / "flatbuffers/include/flatbuffers/base.h").read_text()
    assert not list((downloads / "flatbuffers").rglob("BUILD"))
    # A wrong checksum: no file, one error line.
    entry = ARCHIVES["ruy"]
    failed = run("download_file.py", "--url", f"{third_party_server}/{entry['file']}",
                 "--tar-tree-sha256", "0" * 64, "--output", tmp_path / entry["file"], check=False)
    assert failed.returncode == 1 and not (tmp_path / entry["file"]).exists()


@needs_third_party
def test_tflm_test_frames_are_pixels_xor_0x80(tflm_tree):
    """person.bmp holds the int8 input of TFLM's model as bytes: pixel p as p XOR 0x80."""
    path = tflm_tree / TEST_FRAMES_DIR / "person.bmp"
    raw = path.read_bytes()
    stored = np.frombuffer(raw[-96 * 96:], np.uint8).reshape(96, 96)[::-1]  # bottom-up rows
    assert (read_bmp_gray(path) == stored).all()
    assert (tflm_test_frame(path).astype(np.int16) - 128 == stored.view(np.int8)).all()


@needs_third_party
@needs_gxx
@pytest.mark.emulated
def test_host_build_scores_equal_litert_with_the_header_unchanged(host_run, model_c_files,
                                                                  frames):
    """The real TFLM build (resolver from the header's op X-macro, kTensorArenaSize,
    kPixelToInput, Detect) scores every frame as LiteRT does."""
    count = 2 + VAL_FRAMES
    assert host_run["frames_scored"] == count
    assert [f["scores"] for f in host_run["frames"]] == litert_scores(model_c_files[1],
                                                                       frames[0], count)
    assert host_run["scores_equal_litert"]
    settings = (model_c_files[0] / "person_detect_model_data_settings.h").read_text()
    arena = int(settings.split("kTensorArenaSize = ")[1].split(";")[0])
    assert host_run["arena_bytes"] == arena >= host_run["arena_bytes_used"]


def test_memory_split_counts_each_byte_once():
    """A map with merged strings listed overlapping, padding, a TFLM template in the
    application's object, and the model's array."""
    map_text = """\
Linker script and memory map

.text           0x00000000      0x60
 .text.main     0x00000000       0x10 /b/person_detection_app.cc.o
 .text._ZN6tflite22MicroMutableOpResolverILj5EE6FindOpEPKc
                0x00000010        0xe /b/person_detection_app.cc.o
 *fill*         0x0000001e        0x2
 .rodata.str1.1
                0x00000020       0x10 /b/libtflm.a(x.o)
 .rodata.str1.1
                0x00000020        0x8 /b/libtflm.a(y.o)
 .rodata.g_person_detect_model_data
                0x00000030       0x20 /b/model.o
 .text.memcpy   0x00000050       0x10 /usr/lib/gcc/arm-none-eabi/libc.a(memcpy.o)

.data           0x20000000        0x8
 .data.x        0x20000000        0x8 /b/libtflm.a(x.o)

.bss            0x20000008      0x100
 .bss._ZN12_GLOBAL__N_112tensor_arenaE
                0x20000008      0x100 /b/person_detection_app.cc.o
"""
    split = mcu_elf.memory_split(map_text, "model.o")
    assert split["model"]["constants"] == 0x20
    assert split["tflm"] == {"code": 0xe + 0x2, "constants": 0x10, "data": 8, "bss": 0,
                             "flash": 0x28, "ram": 8}
    assert split["application"]["code"] == 0x10 and split["application"]["bss"] == 0x100
    assert split["total"]["flash"] == 0x60 + 8 and split["total"]["ram"] == 0x108
    assert mcu_elf.symbol_size(map_text, "tensor_arenaE") == 0x100


@needs_third_party
@needs_gxx
@needs_arm
@pytest.mark.emulated
def test_cortex_m4f_in_qemu_scores_as_the_host_and_counts_instructions(
        tflm_tree, model_c_files, frames, host_run, m4f_library, tmp_path):
    """CMSIS-NN on a Cortex-M4F in QEMU: LiteRT's (and the host's) scores, the instruction
    counter exact on a loop of known length, the memory split adding up to the ELF's."""
    result = build_and_run("cortex-m4f", tflm_tree, model_c_files, frames, tmp_path,
                           m4f_library)
    scores = [f["scores"] for f in result["frames"]]
    assert scores == [f["scores"] for f in host_run["frames"]]
    assert scores == litert_scores(model_c_files[1], frames[0], 2 + VAL_FRAMES)
    check = result["counter_check"]
    # One tick (40 instructions at 25 MHz) of the 20,000,000: the call's own instructions.
    assert abs(check["counted"] - check["loop_instructions"]) <= 40
    per_inference = result["instructions_per_inference"]
    per_op = sum(op["instructions"] for op in result["instructions_per_op"].values())
    assert per_op <= per_inference["max"] and per_op > 0.99 * per_inference["min"]
    assert per_inference["max"] - per_inference["min"] < 0.001 * per_inference["max"]
    sizes = subprocess.run(["arm-none-eabi-size", "-A", tmp_path / "firmware.elf"],
                           capture_output=True, text=True, check=True).stdout
    section = {line.split()[0]: int(line.split()[1]) for line in sizes.splitlines()
               if line.startswith(".")}
    memory = result["memory"]
    assert memory["total"]["flash"] == (section[".vectors"] + section[".text"]
                                        + section.get(".ARM.exidx", 0) + section[".data"])
    assert memory["total"]["ram"] == section[".data"] + section[".bss"]
    model_bytes = model_c_files[1].stat().st_size
    assert model_bytes <= memory["model"]["flash"] < model_bytes + 16  # its alignment
    assert result["arena_bytes_reserved"] == result["arena_bytes"]
    assert 0 < result["stack_bytes_used"] < 64 * 1024


@pytest.mark.workflow
def test_mcu_target_needs_no_configuration_and_plans_every_core(workdir):
    """Not in `all`; from a fresh clone it fetches each pinned archive from GitHub (each
    checked by its tree), or from a mirror when tflm_sources.url_base names one, and plans a
    library per core, a firmware and a run per core, the tables."""
    planned = snakemake(workdir, "-n", "-p", "mcu").stdout
    for rule, count in (("download_tflm_archive", len(ARCHIVES)), ("tflm_tree", 1),
                        ("tflm_library", 6), ("host_program", 1), ("firmware", 5),
                        ("mcu_frames", 1), ("run_firmware", 6), ("mcu_summary", 1)):
        assert re.search(rf"^{rule}\s+{count}$", planned, re.MULTILINE), rule
    downloads = sorted(re.findall(r"--url (\S+) --tar-tree-sha256 (\w+) --config-key "
                                  r"tflm_sources\.archives\.([\w-]+)\.tar_tree_sha256", planned))
    assert downloads == sorted((entry["url"], entry["tar_tree_sha256"], name)
                               for name, entry in ARCHIVES.items())
    assert all(url.startswith("https://github.com/") for url, _, _ in downloads)
    mirrored = snakemake(workdir, "-n", "-p", "mcu", "--config",
                         "tflm_sources={url_base: http://127.0.0.1:9}").stdout
    assert sorted(re.findall(r"--url (\S+) --tar-tree-sha256", mirrored)) == sorted(
        f"http://127.0.0.1:9/{entry['file']}" for entry in ARCHIVES.values())
    assert "download_tflm_archive" not in snakemake(workdir, "-n").stdout


@pytest.mark.workflow
def test_a_missing_toolchain_stops_the_run_before_any_download(workdir, tmp_path):
    """On a PATH without the Arm compiler and QEMU, target mcu stops as Snakemake plans it,
    before it downloads an archive: one line with the install command and the command to run
    then, with the run's own config; under --sdm apptainer too (the image has no Arm
    toolchain)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin"), Path(sys.executable).parent):
        for tool in folder.iterdir():
            if tool.name not in ("arm-none-eabi-gcc", "qemu-system-arm"):
                with contextlib.suppress(FileExistsError):
                    (tools / tool.name).symlink_to(tool)
    result = snakemake(workdir, "mcu", "--config", "tflm_sources={url_base: http://127.0.0.1:9}",
                       check=False, env={"PATH": str(tools)})
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: mcu: the microcontroller build needs arm-none-eabi-gcc, qemu-system-arm, not "
        "found on PATH: install them (Debian, Ubuntu: sudo apt-get install gcc-arm-none-eabi "
        "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm g++ make "
        "patch) and run snakemake mcu --cores all "
        f"--snakefile {REPO / 'Snakefile'} --config "
        "'tflm_sources={\"url_base\": \"http://127.0.0.1:9\"}'"], result.stdout
    assert not (workdir / "results").exists()  # nothing fetched
    in_image = snakemake(workdir, "-n", "mcu", "--sdm", "apptainer", check=False)
    assert [line for line in in_image.stdout.splitlines() if line.startswith("error: ")] == [
        "error: mcu: the microcontroller build runs on this machine's tools: the container "
        "image has no Arm toolchain or QEMU: install them (Debian, Ubuntu: sudo apt-get install "
        "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
        f"qemu-system-arm g++ make patch) and run snakemake mcu --cores all --snakefile "
        f"{REPO / 'Snakefile'}"], in_image.stdout


@needs_third_party
@needs_arm
@pytest.mark.emulated
def test_two_clean_builds_in_other_places_give_the_same_library_and_firmware(
        tflm_tree, model_c_files, m4f_library, tmp_path):
    """The Cortex-M4F's library and ELF built again from scratch with the TFLM tree, the
    model's C files and the build at other paths: the same bytes, and no path of either
    build in them (TFLM's error messages name their source files)."""
    elsewhere = tmp_path / "another" / "clone"
    elsewhere.mkdir(parents=True)
    tree = elsewhere / "tflm"
    tree.symlink_to(tflm_tree.resolve(), target_is_directory=True)
    c_dir = shutil.copytree(model_c_files[0], elsewhere / "model_c")
    library = build_library("cortex-m4f", tree, elsewhere / "lib" / "libtflm.a")
    assert sha256_of(library) == sha256_of(m4f_library)
    first = build_firmware("cortex-m4f", tflm_tree, m4f_library, model_c_files[0],
                           tmp_path / "first" / "firmware.elf")
    second = build_firmware("cortex-m4f", tree, library, c_dir, elsewhere / "firmware.elf")
    assert sha256_of(first) == sha256_of(second)
    for folder in (tflm_tree.resolve(), tmp_path, model_c_files[0].resolve(), REPO):
        assert str(folder).encode() not in first.read_bytes() + library.read_bytes(), folder
    assert b"tflm/tensorflow/lite/micro/" in library.read_bytes()  # the mapped name
