#!/usr/bin/env bash
# The container image on this machine: build containers/Containerfile with podman (on a local
# debootstrap bookworm: no registry is reachable here), run the sample workflow inside the
# image, then the way users run it, `snakemake --sdm apptainer` with the image converted to a
# SIF (every job in the image, Snakemake on the host), and on the host (the Python
# environment active when this is called); require identical manifests, and print the
# timings and the image size. Needs root and Debian's packages (podman, runc, debootstrap:
# installed if missing; apptainer by install_apptainer.sh here).
#   tests/container/run_sample_in_container.sh [WORK_DIR]
# IMAGE and BASE_IMAGE name the image built and the local base (kept between runs);
# NO_CACHE=1 rebuilds every layer (else podman reuses the layers of an earlier build).
# SIF_DIR keeps the SIF of each image id (default /var/tmp/person-detection-sif).
# HOST_MANIFEST=path compares with the manifest of a host run of the same sample (the
# SLURM test's local run, in CI) instead of running it again.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "$0: needs root (podman, debootstrap)" >&2; exit 1; }
command -v snakemake > /dev/null || { echo "$0: activate the workflow's venv first" >&2; exit 1; }
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

# Both runs use one snapshot of the workflow code (the repository may change meanwhile).
src=$work/src
rm -rf "$src" && mkdir -p "$src"
tar -C "$repo" --exclude=__pycache__ -c "${files[@]}" | tar -C "$src" -x

sample_config=(--configfile tests/sample_config.yaml quick.yaml)
sample=(--cores 2 "${sample_config[@]}")
run() {  # run NAME COMMAND...: the sample workflow in a fresh $work/NAME, by COMMAND
    local dir=$work/$1
    shift
    rm -rf "$dir" && mkdir -p "$dir"
    for f in "${files[@]}"; do ln -sfn "$src/$f" "$dir/$f"; done
    printf 'models: {person_detection: {steps: 150, batch_size: 32, log_interval_steps: 50}}\n' \
        > "$dir/quick.yaml"
    (cd "$dir" && "$@")
}

# In the container: the code read-only at its own path (the work dir's links point there),
# no network (the sample needs none).
in_container() {
    podman run --rm --network none -v "$src:$src:ro" -v "$PWD:$PWD" -w "$PWD" "$image" "$@"
}

start=$(date +%s)
run container in_container snakemake "${sample[@]}" > "$work/container.log" 2>&1 || { tail -50 "$work/container.log"; exit 1; }
container_s=$(( $(date +%s) - start ))

# Snakemake's own way: the image as a SIF (made once per image id), each job in it. The
# host's PATH for this run has no `python` (Debian has only python3): a job that ran on the
# host instead of in the image would fail. The workflow snapshot is bound read-only because
# the run folder's links point there.
"$repo/tests/container/install_apptainer.sh"
sif_dir=${SIF_DIR:-/var/tmp/person-detection-sif}
sif=$sif_dir/$(podman image inspect --format '{{.Id}}' "$image").sif
if [ ! -f "$sif" ]; then
    start=$(date +%s)
    mkdir -p "$sif_dir"
    { podman save --format docker-archive -o "$work/image.tar" "$image" \
        && apptainer build "$sif.part" "docker-archive://$work/image.tar"; } \
        > "$work/sif.log" 2>&1 || { tail -20 "$work/sif.log"; exit 1; }
    mv "$sif.part" "$sif" && rm "$work/image.tar"
    echo "SIF $sif: built in $(( $(date +%s) - start )) s"
fi
host_path=/usr/sbin:/usr/bin:/sbin:/bin
! PATH=$host_path command -v python > /dev/null \
    || { echo "$0: a python on $host_path would hide jobs run outside the image" >&2; exit 1; }
in_sif=(--sdm apptainer --apptainer-args "--drop-caps CAP_SYS_RESOURCE --bind $src:$src:ro"
        --config container_image="$sif")
on_host_path=(env PATH=$host_path "$(command -v snakemake)")
start=$(date +%s)
run apptainer "${on_host_path[@]}" "${sample[@]}" "${in_sif[@]}" > "$work/apptainer.log" 2>&1 \
    || { tail -50 "$work/apptainer.log"; exit 1; }
apptainer_s=$(( $(date +%s) - start ))
in_image=$(grep -c "^Activating singularity image $sif" "$work/apptainer.log")
shell_jobs=$(grep "^Shell command: " "$work/apptainer.log" | grep -vc "^Shell command: None$")
[ "$in_image" = "$shell_jobs" ] \
    || { echo "$0: $in_image of $shell_jobs jobs ran in $sif" >&2; exit 1; }
# Nothing but the results in the run folder (HOME is the run folder in the image).
left=$(cd "$work/apptainer" && ls -A | grep -vxE '\.snakemake|quick\.yaml|results|'"$(IFS='|'; echo "${files[*]}")" || true)
[ -z "$left" ] || { echo "$0: the jobs left in the run folder: $left" >&2; exit 1; }

# Cluster and container once: the int8 conversion again, as a SLURM job (profiles/slurm on
# the test cluster) in the image; its .tflite must be the one the run's manifest lists.
trap '"$repo/tests/slurm/cluster.sh" stop' EXIT
eval "$("$repo/tests/slurm/cluster.sh" start)"
slurm_start=$(date +%s)
(cd "$work/apptainer" && "${on_host_path[@]}" "${sample_config[@]}" "${in_sif[@]}" \
    --profile profiles/slurm --slurm-init-seconds-before-status-checks 5 --latency-wait 5 \
    --slurm-keep-successful-logs --forcerun quantize --until quantize) \
    > "$work/slurm-apptainer.log" 2>&1 || { tail -50 "$work/slurm-apptainer.log"; exit 1; }
slurm_s=$(( $(date +%s) - slurm_start ))
tflite=results/sample/person_detection/person_detection.tflite
grep -q "^Activating singularity image $sif" "$work/apptainer/.snakemake/slurm_logs/rule_quantize/"*/*.log \
    || { echo "$0: the SLURM job's log does not show $sif" >&2; exit 1; }

a=${HOST_MANIFEST:-$work/host/results/sample/MANIFEST.sha256}
if [ -z "${HOST_MANIFEST:-}" ]; then
    start=$(date +%s)
    run host snakemake "${sample[@]}" > "$work/host.log" 2>&1 || { tail -50 "$work/host.log"; exit 1; }
    host_s="$(( $(date +%s) - start )) s"
else
    host_s="(reused: $HOST_MANIFEST)"
fi

echo "image $image: built in $build_s s, $(( size / 1000000 )) MB ($size bytes)"
echo "sample workflow: $container_s s in the container, $apptainer_s s with --sdm apptainer" \
     "($in_image of $shell_jobs jobs in $sif), $host_s on the host (wall time)"
echo "python: container $(podman run --rm --network none "$image" python -c \
    'import sys; print(sys.version.split()[0], sys.executable)'), host $(python -c \
    'import sys; print(sys.version.split()[0], sys.executable)')"
# Python packages, names normalized; pip is not in the lock.
freeze() { "$@" python -m pip freeze --all 2> /dev/null | grep -v '^pip==' \
    | awk -F'==' '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2 }' | sort; }
freeze podman run --rm --network none "$image" > "$work/pip.container"
freeze env > "$work/pip.host"
if diff "$work/pip.host" "$work/pip.container" > "$work/pip.diff"; then
    echo "python packages: identical ($(wc -l < "$work/pip.host"))"
else
    echo "python packages differ (< host, > container):"
    grep '^[<>]' "$work/pip.diff" | sed 's/^/  /'
fi

echo "SLURM job in the image: $slurm_s s; sacct:"
sacct -X --starttime "$(date -d "@$slurm_start" +%Y-%m-%dT%H:%M:%S)" \
    --format=JobID,Comment%60,AllocCPUS,State,Elapsed
(cd "$work/apptainer" && grep " $tflite\$" results/sample/MANIFEST.sha256 | sha256sum -c -) \
    || { echo "$0: the SLURM job's $tflite is not the manifest's" >&2; exit 1; }
for name in container apptainer; do
    b=$work/$name/results/sample/MANIFEST.sha256
    if diff -q "$a" "$b" > /dev/null; then
        echo "manifests identical, host and $name: $(wc -l < "$b") artifacts"
    else
        echo "manifests differ (path: host sha256 / $name sha256):"
        join -1 2 -2 2 -a 1 -a 2 -e - -o 0,1.1,2.1 <(sort -k 2 "$a") <(sort -k 2 "$b") \
            | awk '$2 != $3 { print "  " $1 ": " $2 " / " $3 }'
        exit 1
    fi
done
