#!/usr/bin/env bash
# Full-size rehearsal of the main job: every stage at COCO 2014's size, measured.
#
#   tests/scale/rehearse.sh WORKDIR [SNAKEMAKE_ARG...]
#
# 1. Writes a synthetic COCO 2014 of COCO's size (make_sample_coco.py --scale: 82,783 +
#    40,504 images, about 7 GB) and its three zips into WORKDIR/source, once; the
#    extracted copy is deleted, the workflow makes its own from the zips.
# 2. Serves the zips from 127.0.0.1 and runs the main job (`all`) in WORKDIR/run with
#    tests/scale/config.yaml: download, extract, labels, 110 shards, a 3,000-step
#    training, evaluation, export, int8 evaluation and TFLM check of all 40,504 val images.
# 3. Prints what each rule cost (scripts/report_stages.py) into WORKDIR/stages.md.
# Needs ~20 GB of disk; takes about 1.5 h on 2 cores. A rerun resumes where it stopped.
# Run it in the environment of the workflow (snakemake and python on PATH).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
work=$(cd "$1" && pwd)
shift
source_dir=$work/source
mkdir -p "$source_dir" "$work/run"

if [ ! -f "$source_dir/coco_md5.yaml" ]; then
    /usr/bin/time -v python "$repo/scripts/make_sample_coco.py" --scale \
        --output "$source_dir/coco" --zips "$source_dir/zips" \
        > "$source_dir/coco_md5.yaml.partial" 2> "$source_dir/generate.log"
    rm -rf "$source_dir/coco"
    mv "$source_dir/coco_md5.yaml.partial" "$source_dir/coco_md5.yaml"
fi
grep -E "^(train|val)2014:|Elapsed|Maximum resident" "$source_dir/generate.log"
ls -l "$source_dir/zips"

# COCO's URL layout: zips/{train,val}2014.zip, annotations/annotations_trainval2014.zip.
served=$source_dir/served
mkdir -p "$served/zips" "$served/annotations"
ln -sf "$source_dir/zips/train2014.zip" "$source_dir/zips/val2014.zip" "$served/zips/"
ln -sf "$source_dir/zips/annotations_trainval2014.zip" "$served/annotations/"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python -m http.server --bind 127.0.0.1 --directory "$served" "$port" > "$work/http.log" 2>&1 &
server=$!
trap 'kill $server' EXIT
{ echo "coco_url: http://127.0.0.1:$port"; cat "$source_dir/coco_md5.yaml"; } > "$work/source.yaml"

cd "$work/run"
configs=("$repo/tests/scale/config.yaml" "$work/source.yaml")
/usr/bin/time -v snakemake -s "$repo/Snakefile" --cores all --configfile "${configs[@]}" \
    "$@" 2> >(tee "$work/snakemake.log" >&2)
snakemake -s "$repo/Snakefile" --configfile "${configs[@]}" --detailed-summary \
    > "$work/outputs.tsv"
python "$repo/scripts/report_stages.py" --benchmarks results/benchmarks \
    --outputs "$work/outputs.tsv" --output "$work/stages.md"
