# Paths and input and params functions of rules/mcu.smk (the microcontroller build).

MCU = f"{RESULTS}/mcu"
MCU_CORES = ["host", *config["mcu"]["cores"]]
TFLM_ARCHIVES = config["tflm_sources"]["archives"]
TFLM_TREE = f"{MCU}/tflm"


def tflm_archive(wildcards):
    """The config entry of the archive named by the file wildcard."""
    return next(e for e in TFLM_ARCHIVES.values() if e["file"] == wildcards.archive_file)


def tflm_archive_url(wildcards):
    base = config["tflm_sources"]["url_base"]
    if base is None:
        raise WorkflowError(
            "tflm_sources.url_base is null: set it to the folder or server holding the TFLM "
            "archives (e.g. --config tflm_sources='{url_base: file:///path/to/third_party}' "
            "or in a --configfile), README, On the microcontroller"
        )
    return f"{base.rstrip('/')}/{wildcards.archive_file}"


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
