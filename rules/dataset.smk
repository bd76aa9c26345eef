# COCO 2014 or an image folder -> Visual Wake Words labels -> sharded, slim-compatible
# TFRecords.


rule vww_annotations:
    input:
        split_instances,
    output:
        result("vww_annotations"),
    log:
        f"{LOGS}/datasets/{{dataset}}/annotations_{{split}}.log",
    benchmark:
        f"{BENCHMARKS}/vww_annotations/{{dataset}}/{{split}}.tsv"
    wildcard_constraints:
        dataset=datasets_from("coco"),
    resources:
        # Peak 2.2 GB for a COCO-sized train instances JSON (340 MB, 613,000 annotations;
        # tests/scale/rehearse.sh).
        mem_mb=4000,
    params:
        category=dataset_setting("category"),
        area_threshold=dataset_setting("area_threshold"),
    shell:
        cli("make_vww_annotations") + " --instances {input}"
        " --category {params.category:q} --area-threshold {params.area_threshold}"
        " --output {output} > {log} 2>&1"


rule folder_annotations:
    input:
        folder_split_files,
    output:
        result("vww_annotations"),
    log:
        f"{LOGS}/datasets/{{dataset}}/annotations_{{split}}.log",
    benchmark:
        f"{BENCHMARKS}/folder_annotations/{{dataset}}/{{split}}.tsv"
    wildcard_constraints:
        dataset=datasets_from("folder"),
    params:
        folder=dataset_setting("folder"),
        class_names=dataset_setting("class_names"),
    shell:
        cli("index_image_folder") + " --folder {params.folder:q} --split {wildcards.split}"
        " --class-names {params.class_names:q} --output {output} > {log} 2>&1"


rule label_map:
    input:
        result("vww_annotations", split="train"),
    output:
        result("labels"),
    log:
        f"{LOGS}/datasets/{{dataset}}/label_map.log",
    benchmark:
        f"{BENCHMARKS}/label_map/{{dataset}}.tsv"
    shell:
        cli("write_label_map") + " --annotations {input} --output {output} > {log} 2>&1"


rule tfrecord_shard:
    input:
        annotations=result("vww_annotations"),
        images=dataset_images_dir,
    output:
        records=result("records"),
        report=result("shard_report"),
    log:
        f"{LOGS}/datasets/{{dataset}}/{{split}}-{{shard}}-of-{{num_shards}}.log",
    benchmark:
        f"{BENCHMARKS}/tfrecord_shard/{{dataset}}/{{split}}-{{shard}}-of-{{num_shards}}.tsv"
    threads: 1
    resources:
        # At COCO's size: peak 0.7 GB; 8 s a train shard, 29 s the longest val shard.
        mem_mb=2000,
        runtime=15,
    params:
        max_image_side=max_image_side_flag(),
    shell:
        cli("build_tfrecord_shard") + " --annotations {input.annotations}"
        " --images {input.images} --shard {wildcards.shard} --num-shards {wildcards.num_shards}"
        " --output {output.records} --report {output.report} {params.max_image_side} > {log} 2>&1"


rule dataset_summary:
    input:
        train=result("vww_annotations", split="train"),
        val=result("vww_annotations", split="val"),
        train_reports=split_shard_reports("train"),
        val_reports=split_shard_reports("val"),
    output:
        result("dataset_summary"),
    log:
        f"{LOGS}/datasets/{{dataset}}/summary.log",
    benchmark:
        f"{BENCHMARKS}/dataset_summary/{{dataset}}.tsv"
    params:
        splits=summary_split_args,
        max_skipped=config["dataset"]["max_skipped_fraction"],
        duplicates="--allow-duplicates" if config["dataset"]["allow_duplicates"] else "",
    shell:
        cli("summarize_dataset") + " {params.splits}"
        " --max-skipped-fraction {params.max_skipped} {params.duplicates}"
        " --output {output} > {log} 2>&1"


rule dataset:
    input:
        [path for dataset in sorted(DATASETS) for path in dataset_outputs(dataset)],
