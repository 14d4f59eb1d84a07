#!/usr/bin/env bash
# A/B speed comparison of this tree against a git revision, as the project claims speed figures:
# the median of interleaved rounds (base, new, base, new, ...) against the baseline, measured in
# the same run. Both benchkernels are release builds; the baseline is built from BASE_REV in a
# scratch worktree ($TMPDIR/gmpos-ab/<rev>, outside this tree so that cargo does not take it for
# a member of this workspace), this tree's from the working directory.
#
#   bench/ab.sh BASE_REV [ROUNDS] [SMP]         (default 7 rounds, -smp 2)
#   BENCHES="sema_pingpong chan_sync" bench/ab.sh HEAD~3 9 1
#
# Prints, per figure, the median of each side, the ratio new/base (below 1: this tree is faster)
# and every round's value. Figures are emulated time under TCG and noisy (2x between
# back-to-back runs has been seen): run it on an otherwise idle machine, and trust the ratio of
# medians, not single values.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base_rev=${1:?usage: bench/ab.sh BASE_REV [ROUNDS] [SMP]}
rounds=${2:-7} smp=${3:-2}
benches=${BENCHES:-"gosched chan_sync"}
rev=$(git rev-parse --short "$base_rev")
wt=${TMPDIR:-/tmp}/gmpos-ab/$rev
if [ ! -d "$wt" ]; then
    git worktree add --detach "$wt" "$rev" >/dev/null
fi
echo "building the baseline ($rev) and this tree's benchkernel (release)" >&2
(cd "$wt/kernel" && cargo build -q --release --bin benchkernel)
(cd kernel && cargo build -q --release --bin benchkernel)
cargo build -q --bin gmpos
base=$wt/kernel/target/x86_64-unknown-none/release/benchkernel
new=kernel/target/x86_64-unknown-none/release/benchkernel
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
    echo "round $r of $rounds done" >&2
done
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
printf "%-30s %12s %12s %8s  (median of %s interleaved rounds, -smp %s, base %s)\n" figure base new new/base "$rounds" "$smp" "$rev"
for b in $(awk '{ print $3 }' "$out/all.txt" | sort -u); do
    mb=$(awk -v b="$b" '$1 == "base" && $3 == b { print $4 }' "$out/all.txt" | median)
    mn=$(awk -v b="$b" '$1 == "new" && $3 == b { print $4 }' "$out/all.txt" | median)
    all_b=$(awk -v b="$b" '$1 == "base" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    all_n=$(awk -v b="$b" '$1 == "new" && $3 == b { printf " %s", $4 }' "$out/all.txt")
    unit=$(awk -v b="$b" '$3 == b { for (i = 5; i <= NF; i++) printf "%s ", $i; exit }' "$out/all.txt")
    if [ -z "$mb" ] || [ -z "$mn" ]; then
        side=baseline; [ -z "$mn" ] && side="this tree"
        printf "%-30s no figure from %s (does it have this benchmark? see: gmpos --kernel ELF bench=NAME)\n" "$b" "$side"
        continue
    fi
    awk -v b="$b" -v mb="$mb" -v mn="$mn" -v u="$unit" -v ab="$all_b" -v an="$all_n" \
        'BEGIN { printf "%-30s %12s %12s %8.3f  %s\n%32s base:%s\n%32s new: %s\n", b, mb, mn, (mb > 0 ? mn / mb : 0), u, "", ab, "", an }'
done
