#!/usr/bin/env bash
# The container image on this machine: build containers/Containerfile with podman (on a local
# debootstrap bookworm: no registry is reachable here) and compare its Python packages with
# the host's; run Snakemake itself in the image for the sample's dataset stage; then the way
# users run it, the image as a SIF with every job in it (`--sdm apptainer`), here through
# SLURM (tests/slurm/run_sample_on_slurm.sh): every artifact must be the reference run's
# (REFERENCE_MANIFEST, the tests' reference run of the sample). Prints the timings and the
# image size. Needs root and Debian's packages (podman, runc, debootstrap: installed if
# missing; apptainer by install_apptainer.sh here).
#   REFERENCE_MANIFEST=.../MANIFEST.sha256 tests/container/run_sample_in_container.sh [WORK_DIR]
# IMAGE and BASE_IMAGE name the image built and the local base (kept between runs);
# NO_CACHE=1 rebuilds every layer (else podman reuses the layers of an earlier build).
# SIF_DIR keeps the SIF of each image id (default /var/tmp/person-detection-sif).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "$0: needs root (podman, debootstrap)" >&2; exit 1; }
command -v snakemake > /dev/null || { echo "$0: activate the workflow's venv first" >&2; exit 1; }
reference=${REFERENCE_MANIFEST:?set REFERENCE_MANIFEST to the MANIFEST.sha256 of the reference run}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/vww-container-run.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
image=${IMAGE:-localhost/person-detection:test}
base=${BASE_IMAGE:-localhost/debian-bookworm-debootstrap:latest}
files=(Snakefile config.yaml rules scripts schemas tests report profiles)

missing=()
for tool in podman runc debootstrap; do
    command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; exit 1; }
fi

# Podman in this sandbox: crun fails on its hybrid cgroups, and without CAP_SYS_RESOURCE
# the default ulimits cannot be set.
cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf

# The base: bookworm from Debian's mirror (the Containerfile's FROM names a registry image),
# with the same apt sources as Docker's debian image. Made once, reused while it exists.
if ! podman image exists "$base"; then
    start=$(date +%s)
    rootfs=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
        > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
    rm -f "$rootfs/etc/apt/sources.list"
    cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*
    tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$base" > /dev/null 2>&1
    rm -rf "$rootfs"
    echo "base image $base (debootstrap + import): $(( $(date +%s) - start )) s"
fi

# pip inside the build reaches PyPI only if it trusts this sandbox's CA certificates. They
# reach the build through a bind mount over /root (pip's user config) that exists only
# while RUN steps run: nothing of it is in the image, the Containerfile knows nothing of it.
build_home=$work/build-home
mkdir -p "$build_home/.config/pip"
cat /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/*.crt \
    > "$build_home/.config/pip/ca-bundle.pem" 2> /dev/null || true
printf '[global]\ncert = /root/.config/pip/ca-bundle.pem\n' > "$build_home/.config/pip/pip.conf"

start=$(date +%s)
podman build --isolation chroot --network host --from "$base" ${NO_CACHE:+--no-cache} \
    --volume "$build_home:/root" \
    -f "$repo/containers/Containerfile" -t "$image" "$repo/envs" \
    > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
build_s=$(( $(date +%s) - start ))
size=$(podman image inspect --format '{{.Size}}' "$image")

# One snapshot of the workflow code for the runs (the repository may change meanwhile).
src=$work/src
rm -rf "$src" && mkdir -p "$src"
tar -C "$repo" --exclude=__pycache__ -c "${files[@]}" | tar -C "$src" -x

# Python packages, names normalized; pip is not in the lock, the linters are the host's only.
freeze() { "$@" python -m pip freeze --all 2> /dev/null | grep -v '^pip==' \
    | awk -F'==' '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2 }' | sort; }
freeze podman run --rm --network none "$image" > "$work/pip.container"
lock_names=$(grep -oE '^[a-z0-9][a-z0-9._-]*==' "$repo/envs/requirements.lock" \
    | tr -d = | tr '_.' '--' | sort)
freeze env | awk -F'==' 'NR == FNR { keep[$1]; next } $1 in keep' <(echo "$lock_names") - \
    > "$work/pip.host"
diff "$work/pip.host" "$work/pip.container" \
    || { echo "$0: the image's Python packages are not the host's (< host, > image)"; exit 1; }
echo "python packages: identical ($(wc -l < "$work/pip.host"))"

# Snakemake itself in the image (the code read-only at its own path, which the run folder's
# links point to; no network: the sample needs none), for the sample's dataset stage: its
# shards and summaries are the reference run's.
dataset_dir=$work/in-image
rm -rf "$dataset_dir" && mkdir -p "$dataset_dir"
for f in "${files[@]}"; do ln -sfn "$src/$f" "$dataset_dir/$f"; done
start=$(date +%s)
(cd "$dataset_dir" && podman run --rm --network none -v "$src:$src:ro" -v "$PWD:$PWD" -w "$PWD" \
    "$image" snakemake dataset --cores 2 --configfile tests/sample_config.yaml) \
    > "$work/in-image.log" 2>&1 || { tail -50 "$work/in-image.log"; exit 1; }
in_image_s=$(( $(date +%s) - start ))
(cd "$dataset_dir" && grep ' results/sample/datasets/results_sample_coco' "$reference" \
    | sha256sum -c --quiet -) \
    || { echo "$0: the dataset stage in the image did not give the reference run's files"; exit 1; }
echo "dataset stage with Snakemake in the image: the reference run's labels, shards and summary"

# Snakemake's own way: the image as a SIF (made once per image id), each job in it, through
# SLURM. The host's PATH for the run has no `python` (Debian has only python3): a job that
# ran on the host instead of in the image would fail. The workflow snapshot is bound
# read-only because the run folder's links point there; the jobs' SLURM logs are kept, to
# count the jobs that ran in the image. Squashfs without compression: the
# SIF is made once here and read locally, and compressing 3 GB took 4 min of the stage.
"$repo/tests/container/install_apptainer.sh"
sif_dir=${SIF_DIR:-/var/tmp/person-detection-sif}
sif=$sif_dir/$(podman image inspect --format '{{.Id}}' "$image").sif
if [ ! -f "$sif" ]; then
    start=$(date +%s)
    mkdir -p "$sif_dir"
    { podman save --format docker-archive -o "$work/image.tar" "$image" \
        && apptainer build --mksquashfs-args "-noI -noD -noF -noX" "$sif.part" \
            "docker-archive://$work/image.tar"; } \
        > "$work/sif.log" 2>&1 || { tail -20 "$work/sif.log"; exit 1; }
    mv "$sif.part" "$sif" && rm "$work/image.tar"
    echo "SIF $sif: built in $(( $(date +%s) - start )) s"
fi
host_path=/usr/sbin:/usr/bin:/sbin:/bin
! PATH=$host_path command -v python > /dev/null \
    || { echo "$0: a python on $host_path would hide jobs run outside the image" >&2; exit 1; }
start=$(date +%s)
PATH=$host_path:$(dirname "$(command -v snakemake)") \
    REFERENCE_MANIFEST=$reference "$src/tests/slurm/run_sample_on_slurm.sh" "$work/slurm" \
    --sdm apptainer --apptainer-args "--drop-caps CAP_SYS_RESOURCE --bind $src:$src:ro" \
    --slurm-keep-successful-logs --config container_image="$sif"
slurm_s=$(( $(date +%s) - start ))
run_dir=$work/slurm/run
in_image=$(cat "$run_dir"/.snakemake/slurm_logs/rule_*/*/*.log \
    | grep -c "^Activating singularity image $sif" || true)
jobs=$(ls -d "$run_dir"/.snakemake/slurm_logs/rule_*/*/ | wc -l)
[ "$in_image" = "$jobs" ] || { echo "$0: $in_image of $jobs SLURM jobs ran in $sif" >&2; exit 1; }
# Nothing but the results in the run folder (HOME is the run folder in the image).
left=$(cd "$run_dir" && ls -A | grep -vxE '\.snakemake|results|'"$(IFS='|'; echo "${files[*]}")" || true)
[ -z "$left" ] || { echo "$0: the jobs left in the run folder: $left" >&2; exit 1; }

echo "image $image: built in $build_s s, $(( size / 1000000 )) MB ($size bytes)"
echo "dataset stage in the image: $in_image_s s; the sample under SLURM, every job in the SIF" \
     "($in_image of $jobs): $slurm_s s (wall time)"
echo "python: image $(podman run --rm --network none "$image" python -c \
    'import sys; print(sys.version.split()[0], sys.executable)'), host $(python -c \
    'import sys; print(sys.version.split()[0], sys.executable)')"
