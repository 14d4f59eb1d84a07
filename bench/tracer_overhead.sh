#!/usr/bin/env bash
# The cost of the execution tracer's hooks when tracing is off. Two benchkernels are built from
# this tree: the baseline with `--features notrace` (every hook compiled out: tracer::on() is a
# constant false) and the normal one (each hook is one load and one branch). Their `gosched` and
# channel benchmarks run in interleaved rounds (base, new, base, new, ...), and the script prints
# the median of each, the ratio new/base, and every round's figure.
#
#   bench/tracer_overhead.sh [ROUNDS] [SMP]          (default 7 rounds, -smp 2)
#   BENCHES="gosched chan_sync" bench/tracer_overhead.sh 5 1
#
# Figures are emulated time under TCG and noisy (2x between back-to-back runs has been seen):
# only the ratio of medians from one run means much, and only on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-7} smp=${2:-2}
benches=${BENCHES:-"gosched chan_sync chan_prod_cons_0"}
cargo build -q --bin gmpos
(cd kernel && cargo build -q --release --bin benchkernel)
(cd kernel && CARGO_TARGET_DIR=target/notrace cargo build -q --release --bin benchkernel --features notrace)
new=kernel/target/x86_64-unknown-none/release/benchkernel
base=kernel/target/notrace/x86_64-unknown-none/release/benchkernel
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
printf "%-22s %12s %12s %8s  (median of %s interleaved rounds, -smp %s)\n" benchmark "notrace" "tracer off" ratio "$rounds" "$smp"
for b in $(awk '{ print $3 }' "$out/all.txt" | sort -u); do
    mb=$(awk -v b="$b" '$1 == "base" && $3 == b { print $4 }' "$out/all.txt" | median)
    mn=$(awk -v b="$b" '$1 == "new" && $3 == b { print $4 }' "$out/all.txt" | median)
    all_b=$(awk -v b="$b" '$1 == "base" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    all_n=$(awk -v b="$b" '$1 == "new" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    unit=$(awk -v b="$b" '$3 == b { print $5; exit }' "$out/all.txt")
    awk -v b="$b" -v mb="$mb" -v mn="$mn" -v u="$unit" -v ab="$all_b" -v an="$all_n" \
        'BEGIN { printf "%-22s %12s %12s %8.3f  %s  base:%s  new:%s\n", b, mb, mn, (mb > 0 ? mn / mb : 0), u, ab, an }'
done
