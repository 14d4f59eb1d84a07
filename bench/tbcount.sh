#!/usr/bin/env bash
# Where the guest's work goes, counted exactly: boot one benchmark under QEMU's execution log
# (-d exec,nochain: one line per translated block executed, on every vCPU) and print, per kernel
# function, how many translated blocks ran, in all and per operation.
#
#   bench/tbcount.sh ELF BENCH OPS [--smp N] [key=value ...]
#
# ELF    a benchkernel built by the runner (e.g. kernel/target/x86_64-unknown-none/release/benchkernel
#        after `./run-qemu.sh --release bench`): linked where it runs, so a logged address is the
#        ELF's own address
# BENCH  the benchmark to run (bench=BENCH)
# OPS    what to divide by: the operations the benchmark ran in all, warm-up and best-of-3 runs
#        included (e.g. 120000 for gosched: 3 runs x 2 goroutines x 20000 yields)
#
# A translated block ends at every branch, call and return, so blocks per function is a profile
# of control flow, with none of the sampling profiler's blind spots (it cannot sample inside an
# interrupts-off section; a block count can). Under the log, a benchmark runs hundreds of times
# slower, so anything timed (timer ticks, sysmon, wake-ups, spinning) is out of proportion: read
# the functions the benchmark itself calls. Two vCPUs' blocks are counted together.
#
# The log goes through a pipe and is counted as it comes (a spawn benchmark writes about 4 GB of
# it); nothing large is written to disk.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 3 ]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
    exit 64
fi
elf=$1 bench=$2 ops=$3
shift 3
smp=2
if [ "${1:-}" = --smp ]; then smp=$2; shift 2; fi
[ -f "$elf" ] || { echo "tbcount.sh: no such ELF: $elf" >&2; exit 64; }
case $ops in ''|*[!0-9]*|0) echo "tbcount.sh: OPS must be a positive integer, not '$ops'" >&2; exit 64 ;; esac
command -v nm >/dev/null || { echo "tbcount.sh: needs nm (binutils)" >&2; exit 1; }
cargo build -q --bin gmpos
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/log"
# "Trace N: 0xHOST [CS_BASE/PC/FLAGS/CFLAGS] ..." -> count per guest PC.
awk -F/ '/^Trace / { c[$2]++ } END { for (k in c) print c[k], k }' < "$tmp/log" > "$tmp/pcs" &
reader=$!
GMPOS_QEMU_ARGS="-d exec,nochain -D $tmp/log" target/debug/gmpos --kernel "$elf" --smp "$smp" \
    --timeout 1800 bench="$bench" "$@" 2>&1 | grep 'BENCH ' || true
# If QEMU never opened the log (a boot error), the reader still waits for a writer: open it once.
if kill -0 "$reader" 2>/dev/null; then timeout 5 sh -c ': > "$1"' _ "$tmp/log" || true; fi
wait "$reader"
nm -C --defined-only -n "$elf" | awk '$2 ~ /^[tTwW]$/' > "$tmp/syms"
python3 - "$tmp/pcs" "$tmp/syms" "$ops" <<'PY'
import bisect, collections, sys
pcs, syms_file, ops = sys.argv[1], sys.argv[2], float(sys.argv[3])
syms = []
for line in open(syms_file):
    addr, _, name = line.rstrip("\n").split(" ", 2)
    syms.append((int(addr, 16), name))
addrs = [a for a, _ in syms]
lo = addrs[0] if addrs else 0
per_fn, total, other = collections.Counter(), 0, 0
for line in open(pcs):
    n, pc = line.split()
    n, pc = int(n), int(pc, 16)
    i = bisect.bisect_right(addrs, pc) - 1
    if pc < lo or i < 0:
        other += n  # firmware, bootloader, AP trampoline
        continue
    per_fn[syms[i][1]] += n
    total += n
print(f"kernel blocks: {total} ({total / ops:.1f} per op); outside the kernel (firmware, boot): {other}")
print(f"{'blocks':>12} {'per op':>8}  function")
for name, n in per_fn.most_common(40):
    print(f"{n:12d} {n / ops:8.2f}  {name[:150]}")
PY
