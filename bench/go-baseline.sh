#!/usr/bin/env bash
# Same-machine baseline for the kernel's benchmarks: Go 1.19's own scheduler
# running the same microbenchmarks (bench/go), natively and under qemu-user.
#
#   bench/go-baseline.sh [GOBENCH FLAGS]     e.g. -budget 100ms -only chan,forkjoin
#
# Prints `BENCH go_native_<name> <value> <unit>` and `BENCH go_qemu_<name> ...`
# lines on stdout (progress on stderr). Compare the kernel's
# `./run-qemu.sh --release bench` figures with the go_qemu_ ones.
# QEMU_USER_ARGS overrides the qemu-x86_64 options (default: probed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=/usr/lib/go-1.19/bin/go
QEMU=qemu-x86_64

say() { printf 'go-baseline.sh: %s\n' "$*" >&2; }

# --- set-up ---------------------------------------------------------------------------------
missing=()
[ -x "$GO" ] || missing+=(golang-1.19-go)
command -v "$QEMU" >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing: ${missing[*]}. Install with:"
        say "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
fi

# --- build ----------------------------------------------------------------------------------
# A clean Go environment: only our toolchain, caches under target/.
unset GOTOOLCHAIN GOROOT GOPATH GOFLAGS GOBIN GOENV GOEXPERIMENT GOAMD64 GOOS GO386
export GO111MODULE=on CGO_ENABLED=0 GOARCH=amd64 GOPROXY=off
export GOCACHE="$ROOT/target/go-bench/cache" GOPATH="$ROOT/target/go-bench/gopath"
export GOMODCACHE="$GOPATH/pkg/mod"
BIN="$ROOT/target/go-bench/gobench"
mkdir -p "$GOCACHE" "$GOPATH"
say "building with $("$GO" version)"
(cd "$ROOT/bench/go" && "$GO" build -trimpath -o "$BIN" .)

# --- run ------------------------------------------------------------------------------------
# One line per result, the prefix go_ rewritten to go_<where>_.
run() {
    local where=$1
    shift
    say "running $where: $*"
    "$@" | sed -un "s/^BENCH go_/BENCH go_${where}_/p"
}

# qemu-user: the default CPU model runs GOAMD64=v1 code; fall back to -cpu max if not.
if [ -n "${QEMU_USER_ARGS+x}" ]; then
    read -r -a qargs <<<"$QEMU_USER_ARGS"
elif "$QEMU" "$BIN" -probe >/dev/null 2>&1; then
    qargs=()
elif "$QEMU" -cpu max "$BIN" -probe >/dev/null 2>&1; then
    qargs=(-cpu max)
else
    say "$QEMU cannot run $BIN:"
    "$QEMU" "$BIN" -probe >&2 || true
    exit 1
fi

say "$(nproc) host CPUs; $(qemu-x86_64 -version | head -n1)"
run native "$BIN" "$@"
run qemu "$QEMU" ${qargs[@]+"${qargs[@]}"} "$BIN" "$@"
