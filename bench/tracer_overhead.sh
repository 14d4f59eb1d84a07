#!/usr/bin/env bash
# The cost of the execution tracer's hooks when tracing is off: run the `gosched` and channel
# benchmarks of two benchkernel ELFs (a baseline without the hooks, and this tree) in
# interleaved rounds, and print the median of each.
#
#   bench/tracer_overhead.sh BASE_ELF NEW_ELF [ROUNDS] [SMP]
#
# Build the baseline from a commit without the tracer, e.g.:
#   git archive <commit> | tar -x -C /tmp/base && (cd /tmp/base/kernel && cargo build --release --bin benchkernel)
#   BASE_ELF=/tmp/base/kernel/target/x86_64-unknown-none/release/benchkernel
# and this tree's with (cd kernel && cargo build --release --bin benchkernel).
# Figures are emulated time under TCG: only the ratio of medians from one run means much.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base=$1 new=$2 rounds=${3:-5} smp=${4:-2}
benches="gosched chan_sync chan_prod_cons_0 chan_pingpong"
cargo build -q --bin gmpos
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
    for b in $benches; do
        for k in base new; do
            elf=$base; [ $k = new ] && elf=$new
            target/debug/gmpos --kernel "$elf" --smp "$smp" --timeout 300 bench="$b" 2>/dev/null \
                | grep -o 'BENCH .*' | grep -v 'BENCH done' | sed "s/^/$k /" >> "$out/all.txt" || true
        done
    done
    echo "round $r done" >&2
done
# "kind BENCH name value unit" -> median per (kind, name).
awk '{ v[$1" "$3] = v[$1" "$3] " " $4; u[$3] = $5; n[$3] = 1 }
     END {
        printf "%-22s %12s %12s %8s  (median of %s rounds, ns/op)\n", "benchmark", "baseline", "tracer off", "ratio", ROUNDS
        for (b in n) {
            split(substr(v["base " b], 2), x, " "); split(substr(v["new " b], 2), y, " ")
            asort(x); asort(y)
            mx = x[int((length(x) + 1) / 2)]; my = y[int((length(y) + 1) / 2)]
            printf "%-22s %12s %12s %8.3f  base:%s  new:%s\n", b, mx, my, (mx > 0 ? my / mx : 0), v["base " b], v["new " b]
        }
     }' ROUNDS="$rounds" "$out/all.txt"
