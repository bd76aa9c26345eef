#!/usr/bin/env bash
# The SLURM profile on a real cluster: start a single-node SLURM (tests/slurm/cluster.sh),
# run the sample workflow through profiles/slurm and locally, require identical manifests,
# show the jobs SLURM ran (sacct), and stop the cluster. Needs root and Debian's packages.
#   tests/slurm/run_sample_on_slurm.sh [WORK_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/vww-slurm-run.XXXXXX)}
mkdir -p "$work"
files=(Snakefile config.yaml rules scripts schemas tests report profiles)

trap '"$repo/tests/slurm/cluster.sh" stop' EXIT  # also after a failed start
eval "$("$repo/tests/slurm/cluster.sh" start)"

run() {  # run NAME ARGS...: the sample workflow in $work/NAME
    local dir=$work/$1
    shift
    mkdir -p "$dir"
    for f in "${files[@]}"; do ln -sfn "$repo/$f" "$dir/$f"; done
    printf 'models: {person_detection: {steps: 150, batch_size: 32, log_interval_steps: 50}}\n' \
        > "$dir/quick.yaml"
    (cd "$dir" && snakemake --configfile tests/sample_config.yaml quick.yaml "$@")
}

start=$(date +%s)
# The test cluster's one node has this machine's cores, fewer than the profile's 8.
run slurm --profile profiles/slurm --slurm-init-seconds-before-status-checks 5 \
    --latency-wait 5 --set-threads train="$(nproc)" evaluate_checkpoint="$(nproc)" > "$work/slurm.log" 2>&1 || { tail -50 "$work/slurm.log"; exit 1; }
echo "SLURM run: $(( $(date +%s) - start )) s wall time"
echo "sacct of the jobs the workflow submitted:"
sacct -X --starttime "$(date -d "@$start" +%Y-%m-%dT%H:%M:%S)" \
    --format=JobID,Comment%70,Partition,AllocCPUS,ReqMem,State,Elapsed
jobs=$(sacct -X -n --starttime "$(date -d "@$start" +%Y-%m-%dT%H:%M:%S)" --format=State | wc -l)
echo "$jobs SLURM jobs"

run local --cores 2 > "$work/local.log" 2>&1 || { tail -50 "$work/local.log"; exit 1; }
diff "$work/local/results/sample/MANIFEST.sha256" "$work/slurm/results/sample/MANIFEST.sha256"
echo "manifests identical: $(wc -l < "$work/slurm/results/sample/MANIFEST.sha256") artifacts"
