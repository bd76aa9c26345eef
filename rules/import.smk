# A model whose init_from is a .tflite (a published model's, or a path) starts from its
# import: a checkpoint of our network, checked against the .tflite it came from.


rule download_published_model:
    output:
        result("published_zip"),
    log:
        f"{LOGS}/published/{{published}}-download.log",
    benchmark:
        f"{BENCHMARKS}/download_published_model/{{published}}.tsv"
    # Compute nodes of clusters often have no internet: download where Snakemake runs.
    localrule: True
    params:
        md5=published_md5,
        how=published_download,
    shell:
        download_command("--md5 {params.md5} --config-key {wildcards.published}.md5")


rule extract_published_model:
    input:
        result("published_zip"),
    output:
        result("published_tflite"),
    log:
        f"{LOGS}/published/{{published}}-extract.log",
    benchmark:
        f"{BENCHMARKS}/extract_published_model/{{published}}.tsv"
    shell:
        cli("extract_tflite") + " --zip {input} --output {output} > {log} 2>&1"


rule import_tflite:
    input:
        tflite=model_init_tflite,
        records=model_train_records,
    output:
        index=result("import_checkpoint_index"),
        data=result("import_checkpoint_data"),
    log:
        f"{LOGS}/{{model}}/import_tflite.log",
    benchmark:
        f"{BENCHMARKS}/import_tflite/{{model}}.tsv"
    threads: run_cores()
    params:
        prefix=output_checkpoint_prefix,
        images=model_setting("calibration_images"),
        recipe=model_eval_flags,
    shell:
        cli("import_tflite") + " --tflite {input.tflite} --records {input.records}"
        " --num-images {params.images} --threads {threads} --output {params.prefix}"
        " {params.recipe} > {log} 2>&1"


rule freeze_import:
    input:
        graph=result("inference_graph"),
        index=result("import_checkpoint_index"),
    output:
        result("import_frozen_graph"),
    log:
        f"{LOGS}/{{model}}/freeze_import.log",
    benchmark:
        f"{BENCHMARKS}/freeze_import/{{model}}.tsv"
    params:
        checkpoint=checkpoint_prefix,
    shell:
        cli("freeze_graph") + " --graph {input.graph} --checkpoint {params.checkpoint}"
        " --output {output} > {log} 2>&1"


rule requantize_import:
    # The import through the workflow's own export, to compare with the original .tflite.
    input:
        frozen=result("import_frozen_graph"),
        records=model_val_records,
    output:
        result("requantized_tflite"),
    log:
        f"{LOGS}/{{model}}/requantize_import.log",
    benchmark:
        f"{BENCHMARKS}/requantize_import/{{model}}.tsv"
    resources:
        mem_mb=2000,
    params:
        images=model_setting("calibration_images"),
        input_flags=model_input_flags,
    shell:
        cli("quantize") + " --frozen-graph {input.frozen} --records {input.records}"
        " --num-images {params.images} {params.input_flags} --output {output} > {log} 2>&1"


rule report_import:
    input:
        tflite=model_init_tflite,
        index=result("import_checkpoint_index"),
        requantized=result("requantized_tflite"),
        records=model_val_records,
    output:
        result("import_report"),
    log:
        f"{LOGS}/{{model}}/report_import.log",
    benchmark:
        f"{BENCHMARKS}/report_import/{{model}}.tsv"
    params:
        checkpoint=checkpoint_prefix,
        recipe=model_eval_flags,
    shell:
        cli("report_import") + " --tflite {input.tflite} --checkpoint {params.checkpoint}"
        " --requantized {input.requantized} --records {input.records}"
        " --output {output} {params.recipe} > {log} 2>&1"


rule imported:
    # The float model of each imported .tflite: checkpoint, frozen graph, report.
    input:
        [path for model in imports() for path in import_outputs(model)],
