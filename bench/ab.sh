#!/usr/bin/env bash
# A/B speed comparison of this tree against a git revision, as the project claims speed figures:
# the median of interleaved rounds (base, new, base, new, ...) against the baseline, measured in
# the same run. Both benchkernels are release builds; the baseline is built from BASE_REV in a
# scratch worktree ($TMPDIR/gmpos-ab/<rev>, outside this tree so that cargo does not take it for
# a member of this workspace), this tree's from the working directory. Each side is one code
# layout, which can move a figure by 1.5x under TCG: bench/layouts.sh does the same over four.
#
#   bench/ab.sh BASE_REV [ROUNDS] [SMP]         (default 7 rounds, -smp 2)
#   BENCHES="sema_pingpong chan_sync" bench/ab.sh HEAD~3 9 1
#   ICOUNT=1 bench/ab.sh HEAD~3 1 1            instruction counts (deterministic; see bench/interleave.sh)
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
base=$wt/kernel/target/x86_64-unknown-none/release/benchkernel
new=kernel/target/x86_64-unknown-none/release/benchkernel
exec bench/interleave.sh "$base" "$new" "$rounds" "$smp" "$benches" "base $rev" "this tree"
