# Paths and input and params functions of rules/mcu.smk (the microcontroller build).

import shutil

MCU = f"{RESULTS}/mcu"
MCU_CORES = ["host", *config["mcu"]["cores"]]
TFLM_ARCHIVES = config["tflm_sources"]["archives"]
TFLM_TREE = f"{MCU}/tflm"


def tflm_archive_name(wildcards):
    """The config's name of the archive named by the file wildcard."""
    return next(n for n, e in TFLM_ARCHIVES.items() if e["file"] == wildcards.archive_file)


def tflm_archive(wildcards):
    """The config entry of the archive named by the file wildcard."""
    return TFLM_ARCHIVES[tflm_archive_name(wildcards)]


def tflm_archive_download(wildcards):
    """Where an archive comes from (a mirror's {url_base}/{file}, else its url) and the
    download limits: download_settings."""
    base = config["tflm_sources"]["url_base"]
    entry = tflm_archive(wildcards)
    return download_settings(
        f"{base.rstrip('/')}/{wildcards.archive_file}" if base else entry["url"]
    )


def tflm_archive_flags(wildcards, input):
    """unpack_tflm_sources.py's --archive NAME=FILE of each archive."""
    return " ".join(
        f"--archive {name}={path}" for name, path in zip(sorted(TFLM_ARCHIVES), input.archives)
    )


def model_c_source(wildcards):
    return result("c_source", model=wildcards.model, c_file=c_names(wildcards.model)[0])


def model_c_files(wildcards):
    c_file = c_names(wildcards.model)[0]
    return [
        result(name, model=wildcards.model, c_file=c_file)
        for name in ("c_source", "c_header", "c_settings")
    ]


def mcu_program(wildcards):
    """What run_firmware runs for a core: the host program or the core's ELF."""
    if wildcards.core == "host":
        return f"{RESULTS}/{wildcards.model}/mcu/host/person_detection_app"
    return f"{RESULTS}/{wildcards.model}/mcu/{wildcards.core}/firmware.elf"


def mcu_parts_json(wildcards):
    """summarize_mcu.py's --parts-json: the config's parts, assumptions and published."""
    settings = config["mcu"]
    return json.dumps(
        {key: settings[key] for key in ("parts", "cycles_per_instruction", "published")},
        sort_keys=True,
    )


# What target mcu runs on the host, and the packages that hold them (Debian and Ubuntu).
MCU_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "g++", "make", "patch")
MCU_PACKAGES = (
    "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
    "qemu-system-arm g++ make patch"
)


def check_mcu_tools():
    """The Arm toolchain, QEMU and the host compiler the microcontroller build runs: this
    machine's (the container image does not hold them yet, so its jobs cannot run under
    --sdm apptainer). Called by the mcu rules' input functions, which Snakemake evaluates as
    it plans, before any job (the archives' download) runs: a missing tool stops the run in
    one line, with the install command and the command to run then."""
    missing = [tool for tool in MCU_TOOLS if shutil.which(tool) is None]
    if DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method:
        problem = "runs on this machine's tools: the container image has no Arm toolchain or QEMU"
    elif missing:
        problem = f"needs {', '.join(missing)}, not found on PATH"
    else:
        return
    sys.exit(
        f"error: mcu: the microcontroller build {problem}: install them (Debian, Ubuntu: "
        f"sudo apt-get install {MCU_PACKAGES}) and run "
        + snakemake_command("mcu", run=command_line_run())
    )


def tflm_archive_files(wildcards):
    """The TFLM archives, in name order (the tools checked first: check_mcu_tools)."""
    check_mcu_tools()
    return [f"{MCU}/archives/{TFLM_ARCHIVES[name]['file']}" for name in sorted(TFLM_ARCHIVES)]


def checked_tflm_tree(wildcards):
    """The TFLM tree a build uses (the tools checked first, as the tree may be built
    already: check_mcu_tools)."""
    check_mcu_tools()
    return TFLM_TREE
