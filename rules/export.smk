# From the final checkpoint to a checked int8 .tflite, its C source and the model summary.


rule export_inference_graph:
    output:
        result("inference_graph"),
    log:
        f"{LOGS}/{{model}}/export_inference_graph.log",
    benchmark:
        f"{BENCHMARKS}/export_inference_graph/{{model}}.tsv"
    params:
        recipe=model_eval_flags,
    shell:
        cli("export_inference_graph") + " --output {output} {params.recipe} > {log} 2>&1"


rule freeze_graph:
    input:
        graph=result("inference_graph"),
        index=model_final_checkpoint,
    output:
        result("frozen_graph"),
    log:
        f"{LOGS}/{{model}}/freeze_graph.log",
    benchmark:
        f"{BENCHMARKS}/freeze_graph/{{model}}.tsv"
    params:
        checkpoint=checkpoint_prefix,
        weights=model_setting("eval_weights"),
    shell:
        cli("freeze_graph") + " --graph {input.graph} --checkpoint {params.checkpoint}"
        " --eval-weights {params.weights} --output {output} > {log} 2>&1"


rule quantize:
    input:
        frozen=result("frozen_graph"),
        records=model_val_records,
    output:
        result("tflite"),
    log:
        f"{LOGS}/{{model}}/quantize.log",
    benchmark:
        f"{BENCHMARKS}/quantize/{{model}}.tsv"
    resources:
        # Peak 0.7 GB (tests/scale/rehearse.sh).
        mem_mb=2000,
    params:
        images=model_setting("calibration_images"),
        input_flags=model_input_flags,
    shell:
        cli("quantize") + " --frozen-graph {input.frozen} --records {input.records}"
        " --num-images {params.images} {params.input_flags} --output {output} > {log} 2>&1"


rule evaluate_tflite:
    input:
        tflite=result("tflite"),
        float_eval=result("evaluation", evaluation="eval"),
        records=model_val_records,
    output:
        report=result("tflite_eval"),
        predictions=result("int8_predictions"),
    log:
        f"{LOGS}/{{model}}/evaluate_tflite.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_tflite/{{model}}.tsv"
    resources:
        # 40,503 val images: 4.5 min on one core (reference kernels) per preprocessing,
        # peak 0.7 GB.
        runtime=30,
    params:
        input_flags=model_input_flags,
        operating_point=operating_point_flags,
    shell:
        cli("evaluate_tflite") + " --tflite {input.tflite} --records {input.records}"
        " --float-eval {input.float_eval} {params.operating_point} {params.input_flags}"
        " --output {output.report} --predictions {output.predictions} > {log} 2>&1"


rule check_micro:
    input:
        tflite=result("tflite"),
        records=model_val_records,
    output:
        result("micro_check"),
    log:
        f"{LOGS}/{{model}}/check_micro.log",
    benchmark:
        f"{BENCHMARKS}/check_micro/{{model}}.tsv"
    resources:
        # 40,503 val images in TFLM and LiteRT: 7.5 min on one core, peak 0.7 GB.
        runtime=60,
    params:
        images=model_setting("micro_check_images"),
        input_flags=model_input_flags,
    shell:
        cli("check_micro") + " --tflite {input.tflite} --records {input.records}"
        " --num-images {params.images} {params.input_flags} --output {output} > {log} 2>&1"


rule c_source:
    input:
        result("tflite"),
    output:
        source=result("c_source"),
        header=result("c_header"),
    log:
        f"{LOGS}/{{model}}/c_source-{{c_file}}.log",
    benchmark:
        f"{BENCHMARKS}/c_source/{{model}}-{{c_file}}.tsv"
    params:
        array=model_c_array,
    shell:
        cli("write_c_source") + " --tflite {input} --array-name {params.array}"
        " --output {output.source} > {log} 2>&1"


rule model_settings:
    input:
        model_json=result("model_json"),
        micro_check=result("micro_check"),
    output:
        result("c_settings"),
    log:
        f"{LOGS}/{{model}}/model_settings-{{c_file}}.log",
    benchmark:
        f"{BENCHMARKS}/model_settings/{{model}}-{{c_file}}.tsv"
    shell:
        cli("write_model_settings") + " --model-json {input.model_json}"
        " --micro-check {input.micro_check} --output {output} > {log} 2>&1"


rule describe_model:
    input:
        labels=model_labels,
        tflite=result("tflite"),
        tflite_eval=result("tflite_eval"),
        index=model_final_checkpoint,
    output:
        result("model_json"),
    log:
        f"{LOGS}/{{model}}/describe_model.log",
    benchmark:
        f"{BENCHMARKS}/describe_model/{{model}}.tsv"
    params:
        checkpoint=checkpoint_prefix,
        max_image_side=max_image_side_flag(),
        recipe=model_eval_flags,
    shell:
        cli("describe_model") + " --labels {input.labels} --tflite {input.tflite}"
        " --tflite-eval {input.tflite_eval} --checkpoint {params.checkpoint} {params.max_image_side} {params.recipe}"
        " --output {output} > {log} 2>&1"


rule model_summary:
    input:
        eval=result("evaluation", evaluation="eval"),
        tflite_eval=result("tflite_eval"),
        micro_check=result("micro_check"),
        tflite=result("tflite"),
        frozen=result("frozen_graph"),
        source=model_c_file("c_source"),
        header=model_c_file("c_header"),
        settings=model_c_file("c_settings"),
        init_eval=model_init_eval,
    output:
        report(
            result("model_summary"),
            caption="../report/summary.rst",
            category="{model}",
            labels={"figure": "summary: accuracy, size, arena"},
        ),
    log:
        f"{LOGS}/{{model}}/model_summary.log",
    benchmark:
        f"{BENCHMARKS}/model_summary/{{model}}.tsv"
    params:
        recipe=model_eval_flags,
        init_eval=init_eval_flag,
    shell:
        cli("summarize_model") + " --model {wildcards.model} --eval {input.eval}"
        " --tflite-eval {input.tflite_eval} --micro-check {input.micro_check}"
        " --tflite {input.tflite} --artifact frozen_graph={input.frozen}"
        " --artifact c_source={input.source} --artifact c_header={input.header}"
        " --artifact c_settings={input.settings}"
        " {params.init_eval} {params.recipe} --output {output} > {log} 2>&1"


rule report_figures:
    input:
        index=model_final_checkpoint,
        eval=result("evaluation", evaluation="eval"),
        tflite_eval=result("tflite_eval"),
        micro_check=result("micro_check"),
        tflite=result("tflite"),
        records=model_val_records,
    output:
        curves=report(
            result("training_curves"),
            caption="../report/training_curves.rst",
            category="{model}",
            labels={"figure": "training curves"},
        ),
        confusion=report(
            result("confusion_matrix"),
            caption="../report/confusion_matrix.rst",
            category="{model}",
            labels={"figure": "confusion matrix"},
        ),
        predictions=report(
            result("val_predictions"),
            caption="../report/val_predictions.rst",
            category="{model}",
            labels={"figure": "val predictions"},
        ),
        roc_pr=report(
            result("roc_pr"),
            caption="../report/roc_pr.rst",
            category="{model}",
            labels={"figure": "ROC and precision-recall"},
        ),
        person_size=report(
            result("person_size"),
            caption="../report/person_size.rst",
            category="{model}",
            labels={"figure": "recall by person size"},
        ),
        layers=report(
            result("layers"),
            caption="../report/layers.rst",
            category="{model}",
            labels={"figure": "per-layer table"},
        ),
    log:
        f"{LOGS}/{{model}}/report_figures.log",
    benchmark:
        f"{BENCHMARKS}/report_figures/{{model}}.tsv"
    params:
        input_flags=model_input_flags,
    shell:
        cli("plot_report") + " --train-dir $(dirname {input.index})"
        " --eval {input.eval} --tflite-eval {input.tflite_eval}"
        " --micro-check {input.micro_check} --tflite {input.tflite}"
        " --records {input.records} {params.input_flags}"
        " --output-dir $(dirname {output.curves}) > {log} 2>&1"


rule export:
    input:
        [model_outputs(model) for model in MODELS],


rule manifest:
    input:
        manifest_inputs(),
    output:
        result("manifest"),
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{BENCHMARKS}/manifest.tsv"
    shell:
        cli("write_manifest") + " --output {output} {input} > {log} 2>&1"


VERIFIED_SHARDS, VERIFIED_SHARD_REPORTS = shards_and_reports()


rule verify:
    log:
        f"{LOGS}/verify.log",
    # `snakemake verify`: every artifact against MANIFEST.sha256 and every shard against
    # its report; names each missing or damaged file. No output: it runs every time.
    localrule: True
    params:
        manifest=result("manifest"),
        shards=VERIFIED_SHARDS,
        reports=VERIFIED_SHARD_REPORTS,
    shell:
        cli("verify_results") + " --manifest {params.manifest} --shards {params.shards}"
        " --shard-reports {params.reports} --log {log}"
