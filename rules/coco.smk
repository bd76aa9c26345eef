# The COCO 2014 source: downloaded and extracted, generated (sample), or already on disk.

if config["sample_dataset"] is not None:

    rule make_sample_coco:
        output:
            train_images=directory(coco_images_dir("train")),
            val_images=directory(coco_images_dir("val")),
            train_instances=coco_instances("train"),
            val_instances=coco_instances("val"),
        log:
            f"{LOGS}/make_sample_coco.log",
        benchmark:
            f"{BENCHMARKS}/make_sample_coco.tsv"
        params:
            sample=config["sample_dataset"],
        shell:
            cli("make_sample_coco") + " --output $(dirname {output.train_images})"
            " --train-images {params.sample[train_images]}"
            " --val-images {params.sample[val_images]}"
            " --seed {params.sample[seed]}"
            " --small-person-share {params.sample[small_person_share]} > {log} 2>&1"

elif config["download"]:

    rule download_coco_zip:
        output:
            downloaded_zip(f"{ZIP_DIR}/{{zip_name}}"),
        log:
            f"{LOGS}/download/{{zip_name}}.log",
        benchmark:
            f"{BENCHMARKS}/download_coco_zip/{{zip_name}}.tsv"
        # Compute nodes of clusters often have no internet: download where Snakemake runs.
        localrule: True
        resources:
            runtime=24 * 60,
        params:
            # What to download: a changed md5 downloads again.
            md5=zip_md5,
            # Where from and how (URL, limits): not what. Snakemake does not record a param
            # of this type (a str or number it would), so another mirror or limit does not
            # redo a download, nor, with keep_zips: false, the deleted zip and all after it.
            how=coco_download,
        shell:
            download_command("--md5 {params.md5} --config-key \"coco_md5['{wildcards.zip_name}']\"")

    rule extract_coco_images:
        input:
            f"{ZIP_DIR}/{{split}}2014.zip",
        output:
            directory(f"{COCO_DIR}/{{split}}2014"),
        log:
            f"{LOGS}/extract/{{split}}2014.log",
        benchmark:
            f"{BENCHMARKS}/extract_coco_images/{{split}}2014.tsv"
        resources:
            # 23 s for 4.4 GB of zip here; COCO's train2014.zip is 13 GB.
            runtime=60,
        shell:
            cli("extract_coco_zip") + " {input} --into $(dirname {output})"
            " --member {wildcards.split}2014/ > {log} 2>&1"

    rule extract_coco_annotations:
        input:
            f"{ZIP_DIR}/{ANNOTATIONS_ZIP}",
        output:
            train=coco_instances("train"),
            val=coco_instances("val"),
        log:
            f"{LOGS}/extract/annotations.log",
        benchmark:
            f"{BENCHMARKS}/extract_coco_annotations.tsv"
        shell:
            cli("extract_coco_zip") + " {input} --into $(dirname $(dirname {output.train}))"
            " --member annotations/instances_train2014.json"
            " --member annotations/instances_val2014.json > {log} 2>&1"
