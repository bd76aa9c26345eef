# From the final checkpoint to a checked int8 .tflite, its C source and the model summary.


rule export_inference_graph:
    output:
        f"{RESULTS}/{{model}}/export/inference_graph.pb",
    params:
        recipe=model_eval_flags,
    log:
        f"{LOGS}/{{model}}/export_inference_graph.log",
    benchmark:
        f"{BENCHMARKS}/export_inference_graph/{{model}}.tsv"
    shell:
        cli("export_inference_graph") + " --output {output} {params.recipe} > {log} 2>&1"


rule freeze_graph:
    input:
        graph=f"{RESULTS}/{{model}}/export/inference_graph.pb",
        index=model_final_checkpoint,
    output:
        f"{RESULTS}/{{model}}/export/frozen_graph.pb",
    params:
        checkpoint=checkpoint_prefix,
        weights=model_setting("eval_weights"),
    log:
        f"{LOGS}/{{model}}/freeze_graph.log",
    benchmark:
        f"{BENCHMARKS}/freeze_graph/{{model}}.tsv"
    shell:
        cli("freeze_graph") + " --graph {input.graph} --checkpoint {params.checkpoint}"
        " --eval-weights {params.weights} --output {output} > {log} 2>&1"


rule quantize:
    input:
        frozen=f"{RESULTS}/{{model}}/export/frozen_graph.pb",
        records=model_val_records,
    output:
        f"{RESULTS}/{{model}}/{{model}}.tflite",
    params:
        images=model_setting("calibration_images"),
        input_flags=model_input_flags,
    log:
        f"{LOGS}/{{model}}/quantize.log",
    benchmark:
        f"{BENCHMARKS}/quantize/{{model}}.tsv"
    resources:
        mem_mb=4000,
    shell:
        cli("quantize") + " --frozen-graph {input.frozen} --records {input.records}"
        " --num-images {params.images} {params.input_flags} --output {output} > {log} 2>&1"


rule evaluate_tflite:
    input:
        tflite=f"{RESULTS}/{{model}}/{{model}}.tflite",
        float_eval=f"{RESULTS}/{{model}}/eval.json",
        records=model_val_records,
    output:
        f"{RESULTS}/{{model}}/tflite_eval.json",
    params:
        input_flags=model_input_flags,
    log:
        f"{LOGS}/{{model}}/evaluate_tflite.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_tflite/{{model}}.tsv"
    resources:
        runtime=120,
    shell:
        cli("evaluate_tflite") + " --tflite {input.tflite} --records {input.records}"
        " --float-eval {input.float_eval} {params.input_flags} --output {output} > {log} 2>&1"


rule check_micro:
    input:
        tflite=f"{RESULTS}/{{model}}/{{model}}.tflite",
        records=model_val_records,
    output:
        f"{RESULTS}/{{model}}/micro_check.json",
    params:
        images=model_setting("micro_check_images"),
        input_flags=model_input_flags,
    log:
        f"{LOGS}/{{model}}/check_micro.log",
    benchmark:
        f"{BENCHMARKS}/check_micro/{{model}}.tsv"
    resources:
        runtime=180,
    shell:
        cli("check_micro") + " --tflite {input.tflite} --records {input.records}"
        " --num-images {params.images} {params.input_flags} --output {output} > {log} 2>&1"


rule c_source:
    input:
        f"{RESULTS}/{{model}}/{{model}}.tflite",
    output:
        source=f"{RESULTS}/{{model}}/c/{{c_file}}.cc",
        header=f"{RESULTS}/{{model}}/c/{{c_file}}.h",
    params:
        array=model_c_array,
    log:
        f"{LOGS}/{{model}}/c_source-{{c_file}}.log",
    benchmark:
        f"{BENCHMARKS}/c_source/{{model}}-{{c_file}}.tsv"
    shell:
        cli("write_c_source") + " --tflite {input} --array-name {params.array}"
        " --output {output.source} > {log} 2>&1"


rule describe_model:
    input:
        labels=model_labels,
        tflite=f"{RESULTS}/{{model}}/{{model}}.tflite",
        index=model_final_checkpoint,
    output:
        f"{RESULTS}/{{model}}/model.json",
    params:
        checkpoint=checkpoint_prefix,
        max_image_side=max_image_side_flag(),
        recipe=model_eval_flags,
    log:
        f"{LOGS}/{{model}}/describe_model.log",
    benchmark:
        f"{BENCHMARKS}/describe_model/{{model}}.tsv"
    shell:
        cli("describe_model") + " --labels {input.labels} --tflite {input.tflite}"
        " --checkpoint {params.checkpoint} {params.max_image_side} {params.recipe}"
        " --output {output} > {log} 2>&1"


rule model_summary:
    input:
        eval=f"{RESULTS}/{{model}}/eval.json",
        tflite_eval=f"{RESULTS}/{{model}}/tflite_eval.json",
        micro_check=f"{RESULTS}/{{model}}/micro_check.json",
        tflite=f"{RESULTS}/{{model}}/{{model}}.tflite",
        frozen=f"{RESULTS}/{{model}}/export/frozen_graph.pb",
        source=model_c_source,
        header=model_c_header,
        init_eval=model_init_eval,
    output:
        report(
            f"{RESULTS}/{{model}}/summary.json",
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
        " {params.init_eval} {params.recipe} --output {output} > {log} 2>&1"


rule report_figures:
    input:
        index=model_final_checkpoint,
        eval=f"{RESULTS}/{{model}}/eval.json",
        tflite_eval=f"{RESULTS}/{{model}}/tflite_eval.json",
        tflite=f"{RESULTS}/{{model}}/{{model}}.tflite",
        records=model_val_records,
    output:
        curves=report(
            f"{RESULTS}/{{model}}/report/training_curves.png",
            caption="../report/training_curves.rst",
            category="{model}",
            labels={"figure": "training curves"},
        ),
        confusion=report(
            f"{RESULTS}/{{model}}/report/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="{model}",
            labels={"figure": "confusion matrix"},
        ),
        predictions=report(
            f"{RESULTS}/{{model}}/report/val_predictions.png",
            caption="../report/val_predictions.rst",
            category="{model}",
            labels={"figure": "val predictions"},
        ),
    params:
        input_flags=model_input_flags,
    log:
        f"{LOGS}/{{model}}/report_figures.log",
    benchmark:
        f"{BENCHMARKS}/report_figures/{{model}}.tsv"
    shell:
        cli("plot_report") + " --train-dir $(dirname {input.index})"
        " --eval {input.eval} --tflite-eval {input.tflite_eval} --tflite {input.tflite}"
        " --records {input.records} {params.input_flags}"
        " --output-dir $(dirname {output.curves}) > {log} 2>&1"


rule export:
    input:
        [model_outputs(model) for model in MODELS],


rule manifest:
    input:
        manifest_inputs(),
    output:
        f"{RESULTS}/MANIFEST.sha256",
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{BENCHMARKS}/manifest.tsv"
    shell:
        cli("write_manifest") + " --output {output} {input} > {log} 2>&1"
