#!/usr/bin/env bash
# Run the kernel's benchmarks and the Go 1.19 baseline back to back on this
# machine, and print, for every benchmark both have, the ratio
# kernel / go-under-qemu-user (below 1.0 = the kernel is faster).
#
#   bench/compare.sh [--smp N]      N defaults to the host's core count, so
#                                   that both sides have as many CPUs
# Output: the BENCH lines of both, then `BENCH ratio_<name> <r> x` lines and
# a table. Figures are emulated time; only ratios from one run mean much.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
smp=$(nproc)
if [ "${1:-}" = "--smp" ]; then smp=$2; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== kernel: ./run-qemu.sh --release --smp $smp bench" >&2
./run-qemu.sh --release --smp "$smp" --timeout 600 bench | tee "$out/kernel.txt" | grep '^\[cpu[0-9]*\] BENCH' || true
echo "== Go 1.19: bench/go-baseline.sh" >&2
bench/go-baseline.sh | tee "$out/go.txt" | grep '^BENCH' || true
echo "== kernel / go_qemu" >&2
awk '
    BEGIN {
        # Kernel benchmarks named after the Go testing benchmarks -> the Go
        # baseline names, with a scale (a round trip is two messages).
        kmap["ChanSync"] = "chan_sync";             kscale["ChanSync"] = 1
        kmap["ChanProdCons0"] = "chan_prodcons0";   kscale["ChanProdCons0"] = 1
        kmap["ChanProdCons10"] = "chan_prodcons10"; kscale["ChanProdCons10"] = 1
        kmap["ChanProdCons100"] = "chan_prodcons100"; kscale["ChanProdCons100"] = 1
        kmap["ChanPingPong_p1"] = "chan_pingpong";  kscale["ChanPingPong_p1"] = 0.5
        kmap["ChanPingPong"] = "chan_pingpong_p2";  kscale["ChanPingPong"] = 0.5
    }
    FNR == NR {                       # kernel lines: "[cpuN] BENCH name value unit"
        for (i = 1; i <= NF; i++) if ($i == "BENCH") {
            n = $(i+1); v = $(i+2); un = $(i+3)
            if (n in kmap) { v = v * kscale[n]; n = kmap[n]; un = "ns/op" }
            k[n] = v; u[n] = un
        }
        next
    }
    $1 == "BENCH" && $2 ~ /^go_qemu_/ {
        name = substr($2, 9); g[name] = $3
    }
    END {
        printf "%-26s %14s %14s %8s\n", "benchmark", "kernel", "go_qemu", "ratio" > "/dev/stderr"
        for (n in k) if (n in g && g[n] + 0 > 0 && u[n] != "x") {
            r = k[n] / g[n]
            printf "BENCH ratio_%s %.2f x\n", n, r
            printf "%-26s %14s %14s %8.2f\n", n, k[n], g[n], r > "/dev/stderr"
        }
    }' "$out/kernel.txt" "$out/go.txt"
