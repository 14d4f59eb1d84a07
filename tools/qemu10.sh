#!/usr/bin/env bash
# Install QEMU 10.0.x from Debian bookworm-backports into target/qemu10/, beside the system QEMU
# (which stays as it is), and write a wrapper that runs it:
#
#   tools/qemu10.sh                      # installs once; prints the wrapper's path (last line)
#   GMPOS_QEMU=$(tools/qemu10.sh | tail -n1) cargo run -- --cpu max --smp 2
#
# Why: QEMU 7.2 (Debian 12's) emulates no x2APIC, even with -cpu max; QEMU 10's TCG with
# -cpu max does (see README, "Other QEMUs, KVM and real hardware").
#
# How, without touching the system's apt set-up or packages:
# - apt runs with a configuration of its own under target/qemu10/apt/: a sources.list naming only
#   bookworm-backports, its own package lists, cache and lock files (-o Dir::Etc::SourceList=...,
#   Dir::Etc::SourceParts=<empty dir>, Dir::State=..., Dir::Cache=...). /etc/apt is only read
#   (the trusted keys, apt.conf), /var/lib/apt and /var/cache/apt are not used;
# - `apt-get download` fetches qemu-system-x86, qemu-system-common and qemu-system-data (no
#   dependency is installed: the system's qemu-system-x86 7.2 already brought in the libraries);
# - `dpkg -x` unpacks them into target/qemu10/root/ (no dpkg database entry);
# - target/qemu10/qemu-system-x86_64 execs root/usr/bin/qemu-system-x86_64 with
#   QEMU_MODULE_DIR set to its own modules (the system's /usr/lib/x86_64-linux-gnu/qemu holds
#   7.2's, which QEMU 10 must not load; its TCG is built in, not a module as in 7.2) and
#   `-L root/usr/share/qemu -L /usr/share/seabios` (its own data files first, then the system
#   seabios package's BIOS and VGA ROMs, which qemu-system-data's symlinks point at anyway).
#   --uefi boots use the system `ovmf` package's firmware, found by the runner as for QEMU 7.2.
#
# Idempotent: when the wrapper already reports QEMU 10.0.x, it prints its path and exits 0 without
# using the network. Exit 0 with the wrapper's path as the last line of stdout; non-zero with the
# reason on stderr (no apt-get, no network, no package, a missing library).
#
# Environment: QEMU10_MIRROR (default http://deb.debian.org/debian) is the Debian mirror to use.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
dest="$repo/target/qemu10"
root="$dest/root"
wrapper="$dest/qemu-system-x86_64"
real="$root/usr/bin/qemu-system-x86_64"
mirror="${QEMU10_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm-backports
packages=(qemu-system-x86 qemu-system-common qemu-system-data)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { printf 'qemu10.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# The version the wrapper reports ("10.0.2"), or nothing.
wrapper_version() {
    [ -x "$wrapper" ] || return 0
    "$wrapper" --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' | head -n1
}

case "$(wrapper_version)" in
10.0.*)
    echo "$wrapper"
    exit 0
    ;;
esac

[ "$(uname -m)" = x86_64 ] || die "this installs the amd64 packages; this machine is $(uname -m)"
for tool in apt-get dpkg dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: this script needs a Debian-based system (Debian 12 'bookworm')"
done
[ -r "$keyring" ] || die "$keyring not found (package debian-archive-keyring): apt could not check the backports index"

say "installing QEMU 10.0.x from Debian $suite into $dest (the system QEMU is not touched)"
apt_dir="$dest/apt"
rm -rf "$apt_dir" "$dest/debs"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$dest/debs"
printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" >"$apt_dir/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
    -q
)
log="$dest/apt.log"
if ! apt-get "${apt_opts[@]}" update >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "apt-get update of $suite from $mirror failed (no network? the log is $log)"
fi
if ! (cd "$dest/debs" && apt-get "${apt_opts[@]}" download "${packages[@]/%//$suite}") >>"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "apt-get download ${packages[*]} from $suite failed (the log is $log)"
fi
debs=("$dest"/debs/*.deb)
[ "${#debs[@]}" -eq "${#packages[@]}" ] || die "expected ${#packages[@]} packages in $dest/debs, found ${#debs[@]}"

rm -rf "$root"
mkdir -p "$root"
for deb in "${debs[@]}"; do
    dpkg -x "$deb" "$root" || die "dpkg -x $deb failed"
done
[ -x "$real" ] || die "$real missing after unpacking ${debs[*]}"

# Libraries the packages need that this system lacks (apt-get download installs no dependency).
missing=$({ ldd "$real" 2>/dev/null || true; } | sed -n 's/^[[:space:]]*\([^ ]*\) => not found$/\1/p' | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
    die "QEMU 10 needs libraries this system does not have: $missing(install the packages that provide them, e.g. apt-get install qemu-system-x86, then run this again)"
fi

tmp="$wrapper.tmp.$$"
cat >"$tmp" <<EOF
#!/bin/sh
# QEMU 10 from Debian $suite, unpacked by tools/qemu10.sh into $root.
# Its own modules (not 7.2's), its own data files, then the system seabios package's ROMs.
QEMU_MODULE_DIR='$root/usr/lib/x86_64-linux-gnu/qemu'
export QEMU_MODULE_DIR
exec '$real' -L '$root/usr/share/qemu' -L /usr/share/seabios "\$@"
EOF
chmod 755 "$tmp"
mv "$tmp" "$wrapper"

version=$(wrapper_version)
case "$version" in
10.0.*) ;;
*)
    "$wrapper" --version >&2 || true
    die "the wrapper $wrapper does not report QEMU 10.0.x (got '${version:-nothing}')"
    ;;
esac
# Check that it starts with TCG (and quits through QMP).
if ! out=$(printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
    timeout 30 "$wrapper" -accel tcg -machine none -display none -nodefaults -no-user-config -qmp stdio 2>&1); then
    printf '%s\n' "$out" >&2
    die "QEMU 10 does not start with TCG (-accel tcg)"
fi
rm -rf "$dest/debs"
say "installed QEMU $version: $wrapper"
echo "$wrapper"
