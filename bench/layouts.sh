#!/usr/bin/env bash
# A/B speed comparison of this tree against a git revision, measured over several code layouts.
#
#   bench/layouts.sh BASE_REV [ROUNDS] [SMP] [PADS]      (default 3 rounds, -smp 2, 4 layouts)
#   BENCHES="gosched chan_sync" bench/layouts.sh HEAD~1 3 2 "0 1040 2080 3120"
#
# Why: under TCG, where the linker put each function decides part of a benchmark's time. A
# `ret`, an indirect jump and a jump to another 4 KiB page look their target up in the vCPU's
# jump cache, whose softmmu hash gives one page's blocks 64 entries; two hot targets that share
# an entry evict each other on every operation (`bench/tbcount.sh --lookups` shows them). Any
# change anywhere moves every function after it, so a one-layout A/B (bench/ab.sh) measures the
# change *and* a new set of collisions: bench/README.md has rows where the layout decided the
# figure (1.2x either way). Here each side is linked at several layouts, and the figure is the
# median over all of them: the part of the difference that does not depend on where the code
# landed (the idea of Curtsinger and Berger's Stabilizer, done at link time).
#
# How: bench/relink.sh links each side once per pad in PADS (bytes of padding at the start of
# `.text`: every kernel function lies PAD bytes further on; nothing in either source tree changes;
# pad 0 is the plain build). Rounds interleave everything: for each round, for each pad, for each
# benchmark, base then new.
#
# Prints, per figure: the median of each side over all rounds and layouts, their ratio (below 1:
# this tree is faster), and the ratio of medians in each layout, so a figure that one layout
# decided shows as one ratio unlike the others.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
base_rev=${1:?usage: bench/layouts.sh BASE_REV [ROUNDS] [SMP] [PADS]}
rounds=${2:-3} smp=${3:-2} pads=${4:-"0 1040 2080 3120"}
benches=${BENCHES:-"gosched chan_sync"}
case $rounds in ''|*[!0-9]*|0) echo "layouts.sh: ROUNDS must be a positive number, not '$rounds'" >&2; exit 64 ;; esac
case $smp in ''|*[!0-9]*|0) echo "layouts.sh: SMP must be a positive core count, not '$smp'" >&2; exit 64 ;; esac
for p in $pads; do
    case $p in *[!0-9]*) echo "layouts.sh: a pad is a byte count, not '$p'" >&2; exit 64 ;; esac
done
rev=$(git rev-parse --short "$base_rev")
wt=${TMPDIR:-/tmp}/gmpos-ab/$rev
if [ ! -d "$wt" ]; then
    git worktree add --detach "$wt" "$rev" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build -q --bin gmpos

echo "building the baseline ($rev) and this tree's benchkernel (release) at pads: $pads" >&2
for side in base new; do
    kdir=kernel
    if [ $side = base ]; then kdir=$wt/kernel; fi
    bench/relink.sh "$kdir" "$out/$side" "$pads"
done
for pad in $pads; do
    printf '  pad %5d: schedule at %s (base), %s (new)\n' "$pad" \
        "$(nm "$out/base/benchkernel-$pad.elf" | awk '$3 ~ /proc8schedule$/ { print $1 }')" \
        "$(nm "$out/new/benchkernel-$pad.elf" | awk '$3 ~ /proc8schedule$/ { print $1 }')" >&2
done

for r in $(seq 1 "$rounds"); do
    for pad in $pads; do
        for b in $benches; do
            for k in base new; do
                boot_bench "$k $pad" "$out/$k/benchkernel-$pad.elf" "$smp" "$b" >> "$out/all.txt"
            done
        done
    done
    echo "round $r of $rounds done" >&2
done
touch "$out/all.txt"
# "side pad BENCH name value unit..." -> medians.
nl=$(echo $pads | wc -w)
printf "%-26s %10s %10s %7s  %s\n" figure "base $rev" "this tree" ratio \
    "(medians of $rounds rounds x $nl layouts, -smp $smp); ratio in each layout (pad bytes)"
for b in $(awk '{ print $4 }' "$out/all.txt" | sort -u); do
    mb=$(awk -v b="$b" '$1 == "base" && $4 == b { print $5 }' "$out/all.txt" | median)
    mn=$(awk -v b="$b" '$1 == "new" && $4 == b { print $5 }' "$out/all.txt" | median)
    if [ -z "$mb" ] || [ -z "$mn" ]; then
        printf "%-26s no figure from one side (does it have this benchmark?)\n" "$b"
        continue
    fi
    per=""
    for pad in $pads; do
        pb=$(awk -v b="$b" -v p="$pad" '$1 == "base" && $2 == p && $4 == b { print $5 }' "$out/all.txt" | median)
        pn=$(awk -v b="$b" -v p="$pad" '$1 == "new" && $2 == p && $4 == b { print $5 }' "$out/all.txt" | median)
        per="$per $(awk -v pb="${pb:-0}" -v pn="${pn:-0}" -v p="$pad" 'BEGIN { if (pb > 0) printf "%s:%.2f", p, pn / pb; else printf "%s:-", p }')"
    done
    unit=$(awk -v b="$b" '$4 == b && !n++ { print $6 }' "$out/all.txt")
    awk -v b="$b" -v mb="$mb" -v mn="$mn" -v u="$unit" -v per="$per" \
        'BEGIN { printf "%-26s %10s %10s %7.3f  %s;%s\n", b, mb, mn, (mb > 0 ? mn / mb : 0), u, per }'
done
