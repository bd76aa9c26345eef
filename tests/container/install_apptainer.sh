#!/usr/bin/env bash
# Apptainer for the container tests on these machines: Debian 12 packages none, and
# Debian's unstable apptainer needs a newer glibc than Debian 12's. So, as root:
#  - Debian 12's squashfs-tools, uidmap and patchelf, installed as usual;
#  - apptainer from sid and libc6 from trixie, fetched with a private apt configuration
#    (its own sources, lists and cache under /opt/apptainer-apt: the system's apt state
#    and packages are not touched) and unpacked: apptainer to its own paths, glibc to
#    /opt/apptainer-glibc, which apptainer's two binaries are pointed at with patchelf.
# Idempotent: a working apptainer is left as it is. Test infrastructure only: users install
# apptainer the normal way (docs/cluster-and-containers.md).
#   tests/container/install_apptainer.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 1; }
if version=$(apptainer version 2> /dev/null); then
    echo "apptainer $version (already installed)"
    exit 0
fi

apt_dir=/opt/apptainer-apt
glibc=/opt/apptainer-glibc
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log=$apt_dir/install.log
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
: > "$log"
fail() { tail -20 "$log" >&2; echo "$0: $1 (log: $log)" >&2; exit 1; }

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squashfs-tools uidmap patchelf \
    >> "$log" 2>&1 || { apt-get update -qq >> "$log" 2>&1 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squashfs-tools uidmap patchelf \
    >> "$log" 2>&1; } || fail "could not install squashfs-tools uidmap patchelf"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" sid "$keyring" "$mirror" trixie \
    > "$apt_dir/sources.list"
private_apt=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
apt-get "${private_apt[@]}" update >> "$log" 2>&1 || fail "apt-get update of sid and trixie failed"
rm -f "$apt_dir"/debs/*.deb
(cd "$apt_dir/debs" && apt-get "${private_apt[@]}" download apptainer/sid libc6/trixie) \
    >> "$log" 2>&1 || fail "could not download apptainer (sid) and libc6 (trixie)"

dpkg -x "$apt_dir"/debs/apptainer_*.deb /
rm -rf "$glibc" && dpkg -x "$apt_dir"/debs/libc6_*.deb "$glibc"
libs=$glibc/usr/lib/x86_64-linux-gnu
for binary in /usr/bin/apptainer /usr/lib/x86_64-linux-gnu/apptainer/bin/starter; do
    patchelf --set-interpreter "$libs/ld-linux-x86-64.so.2" \
        --set-rpath "$libs:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu" "$binary"
done
echo "apptainer $(apptainer version) ($(basename "$apt_dir"/debs/apptainer_*.deb), glibc from" \
     "$(basename "$apt_dir"/debs/libc6_*.deb) in $glibc)"
