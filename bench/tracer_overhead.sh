#!/usr/bin/env bash
# The cost of the execution tracer's hooks when tracing is off. Two benchkernels are built from
# this tree: the baseline with `--features notrace` (every hook compiled out: tracer::on() is a
# constant false) and the normal one (each hook is one load and one branch). Their `gosched` and
# channel benchmarks run in interleaved rounds (base, new, base, new, ...), and the script prints
# the median of each, the ratio new/base, and every round's figure.
#
#   bench/tracer_overhead.sh [ROUNDS] [SMP]          (default 7 rounds, -smp 2)
#   BENCHES="gosched chan_sync" bench/tracer_overhead.sh 5 1
#   ICOUNT=1 bench/tracer_overhead.sh 1 1            instruction counts (deterministic; see bench/interleave.sh)
#
# Figures are emulated time under TCG and noisy (2x between back-to-back runs has been seen):
# only the ratio of medians from one run means much, and only on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-7} smp=${2:-2}
benches=${BENCHES:-"gosched chan_sync chan_prod_cons_0"}
(cd kernel && cargo build -q --release --bin benchkernel)
(cd kernel && CARGO_TARGET_DIR=target/notrace cargo build -q --release --bin benchkernel --features notrace)
new=kernel/target/x86_64-unknown-none/release/benchkernel
base=kernel/target/notrace/x86_64-unknown-none/release/benchkernel
exec bench/interleave.sh "$base" "$new" "$rounds" "$smp" "$benches" notrace "tracer off"
