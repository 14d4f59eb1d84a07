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
#
#   GO_WHERE="native qemu system" bench/go-baseline.sh [FLAGS]   (default: "native qemu")
#
# also (or only) runs the binary as the init of a Linux guest under qemu-system-x86_64 with TCG,
# the emulator mode the kernel runs in: `BENCH go_system_<name>` lines. qemu-user runs Go's loads
# and stores as host ones; qemu-system looks each up in its software TLB, as it does for the
# kernel's. GO_SMP sets the guest's cores (default: the host's). The guest kernel is Debian's
# linux-image-amd64, fetched once with apt-get download into target/go-bench/linux/.
#
#   ICOUNT=1 bench/go-baseline.sh NAME...    e.g. ICOUNT=1 bench/go-baseline.sh gosched chan_sync
#
# counts instead of timing: the instructions Go executes per operation of each named benchmark at
# one P (GOMAXPROCS=1), every thread's (sysmon's too), as `BENCH go_icount_<name> <n> insn/op`.
# The native binary runs under valgrind's lackey twice, with -n ICOUNT_N1 and -n ICOUNT_N2
# operations (default 2000 and 22000); the difference over the difference in operations leaves out
# start-up and exit. An instruction is the same one natively and under qemu-user, so this is the
# count the go_qemu_ figures pay for. One P because valgrind runs one thread at a time: with two,
# the count follows valgrind's thread switches (chan_sync read 1043 and 5692 insn/op in two
# set-ups), not Go's scheduler. Compare with the kernel at --smp 1:
# `ICOUNT=1 bench/interleave.sh ELF ELF 1 1 "..."` (its figures are 32 guest ns per instruction).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=/usr/lib/go-1.19/bin/go
QEMU=qemu-x86_64

say() { printf 'go-baseline.sh: %s\n' "$*" >&2; }

# --- set-up ---------------------------------------------------------------------------------
missing=()
[ -x "$GO" ] || missing+=(golang-1.19-go)
command -v "$QEMU" >/dev/null 2>&1 || missing+=(qemu-user)
where=${GO_WHERE:-native qemu}
for w in $where; do
    case $w in
    native | qemu) ;;
    system)
        command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
        command -v cpio >/dev/null 2>&1 || missing+=(cpio)
        ;;
    *) say "GO_WHERE takes native, qemu and system, not '$w'"; exit 2 ;;
    esac
done
if [ -n "${ICOUNT:-}" ]; then
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
fi
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

if [ -n "${ICOUNT:-}" ]; then
    [ $# -gt 0 ] || { say "ICOUNT=1: name the benchmarks to count, e.g. gosched chan_sync"; exit 2; }
    n1=${ICOUNT_N1:-2000} n2=${ICOUNT_N2:-22000}
    if ! [ "$n1" -gt 0 ] 2>/dev/null || ! [ "$n2" -gt "$n1" ] 2>/dev/null; then
        say "ICOUNT_N1 and ICOUNT_N2 must be whole numbers with 0 < N1 < N2 (got $n1 and $n2)"
        exit 2
    fi
    # Instructions of one run of NAME with N operations (lackey's "guest instrs" total).
    count() {
        local out
        out=$(GOMAXPROCS=1 valgrind --tool=lackey "$BIN" -only "=$1" -n "$2" 2>&1 >/dev/null)
        sed -n 's/^==[0-9]*==   guest instrs: *\([0-9,]*\)$/\1/p' <<<"$out" | tr -d ,
    }
    for name in "$@"; do
        case $name in
        wake_latency | forkjoin* | *_p[2-9]*)
            say "$name sets its own P count above one: valgrind's count would follow its thread switches"
            exit 2
            ;;
        esac
        "$BIN" -only "=$name" -n 1 2>/dev/null | grep -q . || { say "no benchmark named $name"; exit 2; }
        say "counting $name under valgrind's lackey ($n1 and $n2 operations)"
        c1=$(count "$name" "$n1") c2=$(count "$name" "$n2")
        [ -n "$c1" ] && [ -n "$c2" ] || { say "valgrind printed no instruction count for $name"; exit 1; }
        awk -v a="$c1" -v b="$c2" -v n1="$n1" -v n2="$n2" -v name="$name" \
            'BEGIN { printf "BENCH go_icount_%s %.1f insn/op\n", name, (b - a) / (n2 - n1) }'
    done
    exit 0
fi

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

# --- Go in a Linux guest under qemu-system-x86_64 (GO_WHERE=system) -------------------------
# The guest's kernel: Debian's, as packaged (apt-get download, unpacked, not installed). Its
# initramfs holds one file, /init = the gobench binary; the kernel's built-in initramfs
# supplies /dev/console. The flags follow "--" on the command line, which hands them to init.
# When gobench exits the kernel panics ("Attempted to kill init"), panic=-1 reboots at once and
# -no-reboot ends QEMU. tsc=reliable: under TCG the guest finds its two vCPUs' TSCs
# "unsynchronized" and falls back to the HPET, and then every time.Now and nanotime in Go is a
# system call and an emulated MMIO read (gosched: a median of 861 ns a yield that way, 463 ns
# with the TSC, 5 interleaved boots each). The kernel reads the TSC too. -wait 2s: the guest switches from tsc-early to tsc about
# 2 s into its boot, after init has started.
linux_guest() {
    local dir="$ROOT/target/go-bench/linux" pkg a
    if [ ! -s "$dir/vmlinuz" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
        if [ -z "$pkg" ]; then
            apt-get update >&2 || true
            pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
        fi
        [ -n "$pkg" ] || { say "GO_WHERE=system: apt-cache knows no linux-image-amd64"; return 1; }
        say "fetching the guest kernel ($pkg) with apt-get download"
        rm -rf "$dir" && mkdir -p "$dir/deb"
        (cd "$dir/deb" && apt-get download "$pkg" >&2) || { say "apt-get download $pkg failed"; return 1; }
        dpkg-deb -x "$dir"/deb/*.deb "$dir/root"
        cp "$dir"/root/boot/vmlinuz-* "$dir/vmlinuz"
        rm -rf "$dir/deb" "$dir/root"
    fi
    for a in "$@"; do
        case $a in *[[:space:]]* | '') say "GO_WHERE=system: a flag with a space cannot go on a kernel command line: '$a'"; return 1 ;; esac
    done
    rm -rf "$dir/initramfs" && mkdir -p "$dir/initramfs"
    cp "$BIN" "$dir/initramfs/init"
    (cd "$dir/initramfs" && echo init | cpio -o -H newc --quiet) > "$dir/initrd.cpio"
    timeout 900 qemu-system-x86_64 -accel tcg,thread=multi -smp "${GO_SMP:-$(nproc)}" -m 1024 \
        -display none -serial stdio -monitor none -no-reboot \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.cpio" \
        -append "console=ttyS0 quiet loglevel=0 panic=-1 tsc=reliable clocksource=tsc -- -wait 2s $*" </dev/null |
        tr -d '\r' | tee "$dir/console.log"
    if ! grep -q '^# done:' "$dir/console.log"; then
        say "the Linux guest ended before gobench finished; the end of its console ($dir/console.log):"
        tail -n 20 "$dir/console.log" >&2
        return 1
    fi
}

say "$(nproc) host CPUs; $(qemu-x86_64 -version | head -n1)"
for w in $where; do
    case $w in
    native) run native "$BIN" "$@" ;;
    qemu) run qemu "$QEMU" ${qargs[@]+"${qargs[@]}"} "$BIN" "$@" ;;
    system) run system linux_guest "$@" ;;
    esac
done
