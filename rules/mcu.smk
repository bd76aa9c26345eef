# On the microcontroller (target mcu): TFLM's sources fetched and checked, a TFLM library per
# core, the application with each model's C files for the host and each Cortex-M, run on
# frames in QEMU, and the per-core and per-part tables.


include: "mcu_common.smk"


wildcard_constraints:
    archive_file="|".join(re.escape(entry["file"]) for entry in TFLM_ARCHIVES.values()),
    core="|".join(re.escape(core) for core in MCU_CORES),
    cortex_m="|".join(re.escape(core) for core in config["mcu"]["cores"]),


rule download_tflm_archive:
    output:
        f"{MCU}/archives/{{archive_file}}",
    log:
        f"{LOGS}/mcu/download/{{archive_file}}.log",
    benchmark:
        f"{BENCHMARKS}/download_tflm_archive/{{archive_file}}.tsv"
    # Compute nodes of clusters often have no internet: download where Snakemake runs.
    localrule: True
    params:
        how=tflm_archive_download,
        tree_sha256=lambda wildcards: tflm_archive(wildcards)["tar_tree_sha256"],
        name=tflm_archive_name,
    shell:
        download_command(
            "--tar-tree-sha256 {params.tree_sha256}"
            " --config-key tflm_sources.archives.{params.name}.tar_tree_sha256"
        )


rule tflm_tree:
    input:
        archives=tflm_archive_files,
    output:
        directory(TFLM_TREE),
    log:
        f"{LOGS}/mcu/tflm_tree.log",
    benchmark:
        f"{BENCHMARKS}/tflm_tree.tsv"
    params:
        archives=tflm_archive_flags,
    shell:
        cli("unpack_tflm_sources") + " {params.archives} --output {output} > {log} 2>&1"


rule tflm_library:
    input:
        checked_tflm_tree,
    output:
        f"{MCU}/lib/{{core}}/libtflm.a",
    log:
        f"{LOGS}/mcu/tflm_library-{{core}}.log",
    benchmark:
        f"{BENCHMARKS}/tflm_library/{{core}}.tsv"
    # 47 sources for the host, 125 with CMSIS-NN: 1.5 to 2 min on 2 cores.
    threads: 2
    resources:
        runtime=30,
    shell:
        cli("build_tflm_library") + " --tflm {input} --core {wildcards.core}"
        " --jobs {threads} --output {output} > {log} 2>&1"


rule mcu_frames:
    input:
        tflite=result("tflite"),
        tree=TFLM_TREE,
        records=model_val_records,
    output:
        frames=f"{RESULTS}/{{model}}/mcu/frames.bin",
        scores=f"{RESULTS}/{{model}}/mcu/frames.json",
    log:
        f"{LOGS}/{{model}}/mcu_frames.log",
    benchmark:
        f"{BENCHMARKS}/mcu_frames/{{model}}.tsv"
    params:
        val_frames=config["mcu"]["val_frames"],
        input_flags=model_input_flags,
    shell:
        cli("make_mcu_frames") + " --tflite {input.tflite} --tflm {input.tree}"
        " --records {input.records} --val-frames {params.val_frames} {params.input_flags}"
        " --output-frames {output.frames} --output {output.scores} > {log} 2>&1"


rule host_program:
    input:
        tree=checked_tflm_tree,
        library=f"{MCU}/lib/host/libtflm.a",
        c_files=model_c_files,
    output:
        f"{RESULTS}/{{model}}/mcu/host/person_detection_app",
    log:
        f"{LOGS}/{{model}}/mcu/host_program.log",
    benchmark:
        f"{BENCHMARKS}/host_program/{{model}}.tsv"
    threads: 2
    params:
        source=model_c_source,
        array=model_c_array,
    shell:
        cli("build_firmware") + " --tflm {input.tree} --core host --library {input.library}"
        " --c-source {params.source} --array-name {params.array} --jobs {threads}"
        " --output {output} > {log} 2>&1"


rule firmware:
    input:
        tree=checked_tflm_tree,
        library=f"{MCU}/lib/{{cortex_m}}/libtflm.a",
        c_files=model_c_files,
    output:
        elf=f"{RESULTS}/{{model}}/mcu/{{cortex_m}}/firmware.elf",
        map=f"{RESULTS}/{{model}}/mcu/{{cortex_m}}/firmware.map",
    log:
        f"{LOGS}/{{model}}/mcu/firmware-{{cortex_m}}.log",
    benchmark:
        f"{BENCHMARKS}/firmware/{{model}}-{{cortex_m}}.tsv"
    threads: 2
    params:
        source=model_c_source,
        array=model_c_array,
    shell:
        cli("build_firmware") + " --tflm {input.tree} --core {wildcards.cortex_m}"
        " --library {input.library} --c-source {params.source} --array-name {params.array}"
        " --jobs {threads} --output {output.elf} > {log} 2>&1"


rule run_firmware:
    input:
        program=mcu_program,
        frames=f"{RESULTS}/{{model}}/mcu/frames.bin",
        scores=f"{RESULTS}/{{model}}/mcu/frames.json",
    output:
        f"{RESULTS}/{{model}}/mcu/{{core}}/run.json",
    log:
        f"{LOGS}/{{model}}/mcu/run_firmware-{{core}}.log",
    benchmark:
        f"{BENCHMARKS}/run_firmware/{{model}}-{{core}}.tsv"
    resources:
        runtime=30,
    shell:
        cli("run_firmware") + " --core {wildcards.core} --firmware {input.program}"
        " --frames {input.frames} --frames-json {input.scores} --output {output} > {log} 2>&1"


rule mcu_summary:
    input:
        runs=expand(f"{RESULTS}/{{{{model}}}}/mcu/{{core}}/run.json", core=MCU_CORES),
    output:
        summary=f"{RESULTS}/{{model}}/mcu/mcu.json",
        table=f"{RESULTS}/{{model}}/mcu/mcu.md",
    log:
        f"{LOGS}/{{model}}/mcu/mcu_summary.log",
    benchmark:
        f"{BENCHMARKS}/mcu_summary/{{model}}.tsv"
    params:
        parts=mcu_parts_json,
    shell:
        cli("summarize_mcu") + " --model {wildcards.model} --runs {input.runs}"
        " --parts-json {params.parts:q} --output {output.summary} > {log} 2>&1"


# Not in `all`: it needs the Arm toolchain and QEMU, the TFLM archives (tflm_sources), and
# about 10 min on 2 cores for the five cores (docs/microcontroller.md).
rule mcu:
    input:
        [f"{RESULTS}/{model}/mcu/mcu.json" for model in MODELS],
