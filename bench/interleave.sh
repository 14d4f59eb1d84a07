#!/usr/bin/env bash
# The measuring core of bench/ab.sh and bench/tracer_overhead.sh: run BENCHES of two benchkernel
# ELFs in interleaved rounds (base, new, base, new, ...) and print, per figure, the median of each
# side, the ratio new/base (below 1: new is faster) and every round's value.
#
#   bench/interleave.sh BASE_ELF NEW_ELF ROUNDS SMP "BENCHES" BASE_LABEL NEW_LABEL
#
# ICOUNT=1 boots with the runner's --icount: the guest clock counts instructions (32 guest ns per
# instruction), so every figure is an instruction count / 32 and the same on every round, however
# busy the host is. It measures work done, not time: what TCG makes expensive (a taken branch ends
# a translation block, an IPI, a halt) does not show. One round is enough.
#
# BASE_PARAMS / NEW_PARAMS add boot parameters to one side's boots: give the same ELF twice to
# compare a parameter, e.g. NEW_PARAMS=haltpoll=1 bench/interleave.sh ELF ELF 5 2 "token_ring".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
base=$1 new=$2 rounds=$3 smp=$4 benches=$5 lb=${6:-base} ln=${7:-new}
icount=() mode="interleaved rounds"
if [ -n "${ICOUNT:-}" ]; then icount=(--icount) mode="rounds, --icount: guest ns = 32 x instructions"; fi
cargo build -q --bin gmpos
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
    for b in $benches; do
        for k in base new; do
            elf=$base params=${BASE_PARAMS:-}
            if [ $k = new ]; then elf=$new params=${NEW_PARAMS:-}; fi
            # shellcheck disable=SC2086 # params: a list of key=value words
            boot_bench "$k" "$elf" "$smp" "$b" "${icount[@]}" $params >> "$out/all.txt"
        done
    done
    echo "round $r of $rounds done" >&2
done
touch "$out/all.txt"
# "side BENCH name value unit..." -> median per (side, name).
printf "%-30s %12s %12s %8s  (median of %s %s, -smp %s)\n" figure "$lb" "$ln" ratio "$rounds" "$mode" "$smp"
for b in $(awk '{ print $3 }' "$out/all.txt" | sort -u); do
    mb=$(awk -v b="$b" '$1 == "base" && $3 == b { print $4 }' "$out/all.txt" | median)
    mn=$(awk -v b="$b" '$1 == "new" && $3 == b { print $4 }' "$out/all.txt" | median)
    if [ -z "$mb" ] || [ -z "$mn" ]; then
        side=$lb; [ -z "$mn" ] && side=$ln
        printf "%-30s no figure from %s (does it have this benchmark? see: gmpos --kernel ELF bench=NAME)\n" "$b" "$side"
        continue
    fi
    all_b=$(awk -v b="$b" '$1 == "base" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    all_n=$(awk -v b="$b" '$1 == "new" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    unit=$(awk -v b="$b" '$3 == b { for (i = 5; i <= NF; i++) printf "%s ", $i; exit }' "$out/all.txt")
    awk -v b="$b" -v mb="$mb" -v mn="$mn" -v u="$unit" -v ab="$all_b" -v an="$all_n" -v lb="$lb" -v ln="$ln" \
        'BEGIN { printf "%-30s %12s %12s %8.3f  %s\n%32s %s:%s\n%32s %s:%s\n", b, mb, mn, (mb > 0 ? mn / mb : 0), u, "", lb, ab, "", ln, an }'
done
