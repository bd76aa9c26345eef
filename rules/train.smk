# Training and evaluation of each model in config.yaml `models:`.


rule train:
    input:
        records=model_train_records,
        summary=model_dataset_summary,
        init=model_init_checkpoint,
    output:
        index=result("checkpoint_index"),
        data=result("checkpoint_data"),
    log:
        f"{LOGS}/{{model}}/train-{{steps}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{model}}-{{steps}}.tsv"
    threads: run_cores()
    resources:
        mem_mb=train_mem_mb,
        runtime=7 * 24 * 60,
        # GPUs asked of a cluster (sbatch --gpus); 0 asks none. TensorFlow uses a GPU the
        # node has when the environment carries a CUDA build.
        gpu=model_setting("gpus"),
    params:
        recipe=model_recipe_flags,
        init=model_init_flags,
        # Not a flag (jobs get it as VWW_ARITHMETIC): changing it retrains.
        arithmetic=config["arithmetic"],
    shell:
        cli("train") + " --records {input.records}"
        " --dataset-summary {input.summary} --train-dir $(dirname {output.index})"
        " --threads {threads} --memory-mb {resources.mem_mb} {params.recipe} {params.init}"
        " > {log} 2>&1"


rule evaluate_checkpoint:
    # eval.json: the model's final checkpoint. eval_init.json, for a fine-tuned model: the
    # model it starts from, on this model's val split (the "before" of the fine-tuning).
    input:
        index=evaluated_checkpoint,
        records=model_val_records,
    output:
        report=result("evaluation"),
        predictions=result("float_predictions"),
    log:
        f"{LOGS}/{{model}}/{{evaluation}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_checkpoint/{{model}}/{{evaluation}}.tsv"
    wildcard_constraints:
        evaluation="eval|eval_init",
    threads: run_cores()
    resources:
        # 40,503 val images, both weight sets: 46 s, peak 0.7 GB (tests/scale/rehearse.sh).
        mem_mb=2000,
        runtime=30,
    params:
        checkpoint=checkpoint_prefix,
        recipe=evaluated_model_flags,
    shell:
        cli("evaluate") + " --checkpoint {params.checkpoint} --records {input.records}"
        " --split val --threads {threads} --output {output.report}"
        " --predictions {output.predictions} {params.recipe} > {log} 2>&1"


rule train_all:
    input:
        [final_checkpoint(model) for model in MODELS],


rule evaluate:
    input:
        [result("evaluation", model=model, evaluation="eval") for model in MODELS],
