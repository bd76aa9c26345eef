# The training crop study (config crop_study, target crop_study): its runs are models of the
# config (crop_study.<crop>.seed<seed>), trained, evaluated and exported by the same rules as
# every model; this rule tables them.


rule crop_study:
    input:
        crop_study_inputs,
    output:
        json=result("crop_study_json"),
        table=result("crop_study_table"),
    log:
        f"{LOGS}/crop_study.log",
    benchmark:
        f"{BENCHMARKS}/crop_study.tsv"
    params:
        runs=crop_study_run_flags,
    shell:
        cli("summarize_crop_study") + " {params.runs} --output {output.json}"
        " --table {output.table} > {log} 2>&1"
