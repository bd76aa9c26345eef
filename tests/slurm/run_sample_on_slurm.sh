#!/usr/bin/env bash
# The SLURM profile on a real cluster: start a single-node SLURM (tests/slurm/cluster.sh), run
# the sample (tests/sample_config.yaml) through profiles/slurm, show the jobs SLURM ran
# (sacct), stop the cluster, and require its manifest to be REFERENCE_MANIFEST's (the tests'
# reference run) without the folder model's files (the paths with "face"). Arguments after WORK_DIR go to Snakemake (CI adds `--sdm apptainer`
# and the image: tests/container/run_sample_in_container.sh). Needs root and Debian's
# packages.
#   REFERENCE_MANIFEST=.../MANIFEST.sha256 tests/slurm/run_sample_on_slurm.sh WORK_DIR [ARGS...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$1
shift
reference=${REFERENCE_MANIFEST:?set REFERENCE_MANIFEST to the MANIFEST.sha256 of the reference run}
mkdir -p "$work"
files=(Snakefile config.yaml rules scripts schemas tests report profiles)

trap '"$repo/tests/slurm/cluster.sh" stop' EXIT  # also after a failed start
eval "$("$repo/tests/slurm/cluster.sh" start)"

dir=$work/run
mkdir -p "$dir"
for f in "${files[@]}"; do ln -sfn "$repo/$f" "$dir/$f"; done
start=$(date +%s)
# Every job on one thread (--max-threads 1, under the profile's 8 for training): the sample's
# one-core way of running, against the reference's 2 threads and test_reproducibility's 16.
# Status polled every 2 s (the profile's 20 s and Snakemake's 10 s suit a real cluster's
# queue).
(cd "$dir" && snakemake --profile profiles/slurm --max-threads 1 \
    --slurm-init-seconds-before-status-checks 2 \
    --seconds-between-status-checks 2 --latency-wait 5 "$@" \
    --configfile tests/sample_config.yaml) > "$work/slurm.log" 2>&1 \
    || { tail -50 "$work/slurm.log"; exit 1; }
echo "SLURM run: $(( $(date +%s) - start )) s wall time"
echo "sacct of the jobs the workflow submitted:"
sacct -X --starttime "$(date -d "@$start" +%Y-%m-%dT%H:%M:%S)" \
    --format=JobID,Comment%70,Partition,AllocCPUS,ReqMem,State,Elapsed
echo "$(sacct -X -n --starttime "$(date -d "@$start" +%Y-%m-%dT%H:%M:%S)" --format=State \
    | wc -l) SLURM jobs"

manifest=$dir/results/sample/MANIFEST.sha256
diff <(grep -v face "$reference") "$manifest" \
    || { echo "$0: $manifest is not the reference run's ($reference)"; exit 1; }
echo "manifest identical to the reference run's person model and dataset: $(wc -l < "$manifest") artifacts"
