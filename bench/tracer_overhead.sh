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
benches=${BENCHES:-"gosched chan_sync chan_prod_cons_0"}
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
# "kind BENCH name value unit" -> median per (kind, name) (POSIX awk + sort: no gawk needed).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
printf "%-22s %12s %12s %8s  (median of %s interleaved rounds, -smp %s)\n" benchmark baseline "tracer off" ratio "$rounds" "$smp"
for b in $(awk '{ print $3 }' "$out/all.txt" | sort -u); do
    mb=$(awk -v b="$b" '$1 == "base" && $3 == b { print $4 }' "$out/all.txt" | median)
    mn=$(awk -v b="$b" '$1 == "new" && $3 == b { print $4 }' "$out/all.txt" | median)
    all_b=$(awk -v b="$b" '$1 == "base" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    all_n=$(awk -v b="$b" '$1 == "new" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    unit=$(awk -v b="$b" '$3 == b { print $5; exit }' "$out/all.txt")
    awk -v b="$b" -v mb="$mb" -v mn="$mn" -v u="$unit" -v ab="$all_b" -v an="$all_n" \
        'BEGIN { printf "%-22s %12s %12s %8.3f  %s  base:%s  new:%s\n", b, mb, mn, (mb > 0 ? mn / mb : 0), u, ab, an }'
done
