#!/usr/bin/env bash
# Where the guest's work goes, counted exactly: boot one benchmark under QEMU's execution log
# (-d exec,nochain: one line per translated block executed, on every vCPU) and print, per kernel
# function, how many translated blocks ran, in all and per operation.
#
#   bench/tbcount.sh ELF BENCH OPS [--smp N] [--lookups] [--mix] [key=value ...]
#
# ELF    a benchkernel built by the runner (e.g. kernel/target/x86_64-unknown-none/release/benchkernel
#        after `./run-qemu.sh --release bench`): linked where it runs, so a logged address is the
#        ELF's own address
# BENCH  the benchmark to run (bench=BENCH)
# OPS    what to divide by: the operations the benchmark ran in all, warm-up and best-of-3 runs
#        included (e.g. 1200000 for gosched: 3 runs x 2 goroutines x 200000 yields; 360000 for
#        chan_sync and token_ring: 3 runs x 120000). The log slows the guest several hundred times,
#        so a count of a benchmark takes minutes
#
# A translated block ends at every branch, call and return, so blocks per function is a profile
# of control flow, with none of the sampling profiler's blind spots (it cannot sample inside an
# interrupts-off section; a block count can). Under the log, a benchmark runs hundreds of times
# slower, so anything timed (timer ticks, sysmon, wake-ups, spinning) is out of proportion: read
# the functions the benchmark itself calls. Two vCPUs' blocks are counted together.
#
# The log goes through a pipe and is counted as it comes (a spawn benchmark writes about 4 GB of
# it); nothing large is written to disk.
# --lookups also counts, per vCPU, which block followed which, and prints how each transition
# was made. A direct jump or call to a block on the same 4 KiB page as the jumping block's start
# is chained (TCG patches a direct jump in); every other transition looks its target up: a `ret`,
# an indirect jump or call, a direct one to another page, and the block after a `sti`, `pause` or
# `hlt`. A look-up first tries the vCPU's jump cache (4096 entries, direct-mapped; softmmu's hash
# keeps one page's blocks in 64 entries, indexed by (pc ^ pc >> 6) & 63), and on a miss searches
# QEMU's global hash table, several times slower. It prints the look-up targets that share an
# entry, with how often each is looked up per op: two hot targets that share one evict each other
# on every operation. Which targets collide depends on where the linker put each function, so a
# change anywhere in the kernel can add or remove a collision on a path it did not touch.
# --mix also prints, per op, how many instructions ran, and how many of the kinds that TCG makes
# expensive (bench/README.md's table): locked read-modify-writes, pushf/popf, cli/sti, rdtsc,
# pause, calls and returns, and the instructions that access memory (each a software-TLB look-up
# under qemu-system), per kernel function too. It walks each executed block from its start to the
# first instruction that ends a translated block (a branch, call, ret, sti, popf, pause, hlt, or
# the end of the page), so it is exact for the blocks QEMU made, whatever their count.
#
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 3 ]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
    exit 64
fi
elf=$1 bench=$2 ops=$3
shift 3
smp=2 lookups= mix=
while :; do
    case ${1:-} in
        --smp) [ $# -ge 2 ] || { echo "tbcount.sh: --smp needs a core count" >&2; exit 64; }; smp=$2; shift 2 ;;
        --lookups) lookups=1; shift ;;
        --mix) mix=1; shift ;;
        --*) echo "tbcount.sh: unknown option $1 (options: --smp N, --lookups, --mix)" >&2; exit 64 ;;
        *) break ;;
    esac
done
case $smp in ''|*[!0-9]*|0) echo "tbcount.sh: --smp needs a positive core count, not '$smp'" >&2; exit 64 ;; esac
[ -f "$elf" ] || { echo "tbcount.sh: no such ELF: $elf" >&2; exit 64; }
case $ops in ''|*[!0-9]*|0) echo "tbcount.sh: OPS must be a positive integer, not '$ops'" >&2; exit 64 ;; esac
command -v nm >/dev/null || { echo "tbcount.sh: needs nm (binutils)" >&2; exit 1; }
cargo build -q --bin gmpos
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/log"
# "Trace CPU: 0xHOST [CS_BASE/PC/FLAGS/CFLAGS] ..." -> count per guest PC (and, with --lookups,
# per pair of consecutive blocks on one vCPU, into $tmp/pairs).
awk -F/ -v pairs="${lookups:+$tmp/pairs}" '/^Trace / {
        c[$2]++
        if (pairs != "") { cpu = substr($1, 7, index($1, ":") - 7); if (cpu in prev) p[prev[cpu] " " $2]++; prev[cpu] = $2 }
    }
    END { for (k in c) print c[k], k; if (pairs != "") for (k in p) print p[k], k > pairs }' < "$tmp/log" > "$tmp/pcs" &
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
[ -n "$lookups$mix" ] || exit 0
command -v objdump >/dev/null || { echo "tbcount.sh: --lookups and --mix need objdump (binutils)" >&2; exit 1; }
objdump -d --no-show-raw-insn -C "$elf" > "$tmp/dis"
python3 - "$tmp/pcs" "${lookups:+$tmp/pairs}" "$tmp/dis" "$ops" "${mix:-0}" "${lookups:-0}" <<'PY'
import bisect, collections, re, sys
pcs_file, pairs_file, dis_file, ops, mix, lookups = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1", sys.argv[6] == "1"
insns, func = [], None  # (address, instruction text, function)
for l in open(dis_file):
    m = re.match(r"^([0-9a-f]+) <(.*)>:$", l)
    if m:
        func = m.group(2)
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", l)
    if m:
        insns.append((int(m.group(1), 16), m.group(2).strip(), func))
addrs = [a for a, _, _ in insns]


def print_mix():
    # What ends a translated block (besides the end of a page): control flow, and the instructions
    # after which TCG must look at the CPU state again.
    ENDS = re.compile(r"^(jmp|j[a-z]+|call|ret|iretq|hlt|sti|popf|pause|lretq|int3?|ud2|syscall|sysretq)\b")
    KINDS = [
        ("locked read-modify-write (lock-prefixed, xchg with memory)", lambda t: t.startswith("lock ") or (t.startswith("xchg") and "(" in t)),
        ("pushf", lambda t: t.startswith("pushf")),
        ("popf", lambda t: t.startswith("popf")),
        ("cli", lambda t: t == "cli"),
        ("sti", lambda t: t == "sti"),
        ("rdtsc", lambda t: t.startswith("rdtsc")),
        ("pause", lambda t: t == "pause"),
        ("call", lambda t: t.startswith("call")),
        ("ret", lambda t: t.startswith("ret")),
        # Under qemu-system each one goes through the software TLB (bench/README.md).
        ("memory access (an operand in memory, push, pop, call, ret)", lambda t:
            # (padding nops carry a memory operand and prefixes: "data16 cs nopw 0x0(%rax,%rax,1)")
            (("(" in t or "%gs:" in t) and not re.search(r"\b(lea|nop|prefetch)", t))
            or t.startswith(("push", "pop", "call", "ret", "leave"))),
    ]
    total, per_kind, per_fn = 0, collections.Counter(), collections.defaultdict(collections.Counter)
    for line in open(pcs_file):
        n, pc = line.split()
        n, pc = int(n), int(pc, 16)
        i = bisect.bisect_left(addrs, pc)
        if i >= len(addrs) or addrs[i] != pc:
            continue  # outside the kernel, or not an instruction boundary objdump knows
        page = pc >> 12
        j = i
        while j < len(insns) and (insns[j][0] >> 12) == page:
            a, t, f = insns[j]
            total += n
            per_fn[f]["insns"] += n
            for k, test in KINDS:
                if test(t):
                    per_kind[k] += n
                    per_fn[f][k] += n
            if ENDS.match(t):
                break
            j += 1
    print(f"\ninstruction mix per op (kernel blocks only): {total / ops:.1f} instructions")
    for k, _ in KINDS:
        print(f"{per_kind[k] / ops:8.2f}  {k}")
    short = {"locked read-modify-write (lock-prefixed, xchg with memory)": "locked",
             "memory access (an operand in memory, push, pop, call, ret)": "memory"}
    cols = [short.get(k, k) for k, _ in KINDS if k not in ("call", "ret")]
    print(f"\n{'insns':>8} " + " ".join(f"{c:>7}" for c in cols) + "  function (per op)")
    for f, c in sorted(per_fn.items(), key=lambda kv: -kv[1]["insns"])[:25]:
        row = [c[k] for k, _ in KINDS if k not in ("call", "ret")]
        print(f"{c['insns'] / ops:8.1f} " + " ".join(f"{v / ops:7.2f}" for v in row) + f"  {(f or '?')[:90]}")


def print_lookups():
    pairs = []
    for line in open(pairs_file):
        n, a, b = line.split()
        pairs.append((int(n), int(a, 16), int(b, 16)))
    starts = {a for _, a, _ in pairs} | {b for _, _, b in pairs}
    ENDS = re.compile(r"^(jmp|j[a-z]+|call|ret|iretq|hlt|sti|pause)\b")
    ends = {}

    def block_end(a):
        """How the block starting at `a` ends: its last instruction's mnemonic ('fall' when the
        next block simply starts after it), or None outside the kernel."""
        if a not in ends:
            i = bisect.bisect_left(addrs, a)
            ends[a] = None
            if i < len(addrs) and addrs[i] == a:
                for j in range(i, len(insns)):
                    if j > i and insns[j][0] in starts:
                        ends[a] = "fall"
                        break
                    t = insns[j][1]
                    if ENDS.match(t):
                        ends[a] = t.split()[0] + (" *" if "*" in t else "")
                        break
        return ends[a]

    def fn(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        return (insns[i][2] or "?") if i >= 0 else "?"

    def jc_index(pc):  # QEMU softmmu's tb_jmp_cache_hash_func (TB_JMP_CACHE_BITS 12)
        t = pc ^ (pc >> 6)
        return ((t >> 6) & 0xFC0) | (t & 0x3F)

    kinds, cross, targets = collections.Counter(), collections.Counter(), collections.Counter()
    for n, a, b in pairs:
        k = block_end(a)
        if k is None:
            continue
        if k in ("ret", "iretq") or k.endswith(" *"):
            kinds["looked up: ret, iretq or an indirect jump or call"] += n
        elif k in ("sti", "pause", "hlt"):
            kinds[f"looked up: the block after `{k}` (the block ends there)"] += n
        elif (a >> 12) == (b >> 12):
            kinds["chained: a direct jump or call within the page"] += n
            continue
        else:
            kinds["looked up: a direct jump or call to another page"] += n
            cross[(fn(a), fn(b), k)] += n
        targets[b] += n
    print(f"\nblock transitions per op (kernel blocks only):")
    for k, n in kinds.most_common():
        print(f"{n / ops:8.2f}  {k}")
    print("\ndirect transitions to another page, per op:")
    for (fa, fb, k), n in cross.most_common(12):
        print(f"{n / ops:8.2f}  {fa[:60]} -> {fb[:60]} ({k})")
    slots = collections.defaultdict(list)
    for pc, n in targets.items():
        slots[jc_index(pc)].append((n, pc))
    shared = sorted(((sum(n for n, _ in l) - max(n for n, _ in l), i, sorted(l, reverse=True)) for i, l in slots.items() if len(l) > 1), reverse=True)
    print(f"\njump-cache entries shared by look-up targets: {sum(s for s, _, _ in shared) / ops:.2f} look-ups per op "
          "are of a target that is not its entry's most frequent one:")
    for s, i, l in shared[:8]:
        if s / ops < 0.05:
            break
        print(f"  entry {i:4d}: " + "; ".join(f"{pc:x} {fn(pc)[:50]} {n / ops:.2f}/op" for n, pc in l[:3]))


if mix:
    print_mix()
if lookups:
    print_lookups()
PY

