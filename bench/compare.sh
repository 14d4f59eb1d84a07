#!/usr/bin/env bash
# The kernel against Go 1.19's runtime under qemu-user (or, with --go system, in a Linux guest under
# qemu-system), on this machine, in interleaved rounds:
# kernel, Go, kernel, Go, ... For every benchmark both have, each round gives a ratio
# kernel / go_qemu (below 1.0 = the kernel is faster); the script prints the median ratio over
# the rounds with its min-max, flags a spread wider than 1.5x, writes the figures to a TSV and
# draws them (bars of median ratio with min-max whiskers and a line at 1.0).
#
#   bench/compare.sh [--smp N] [--rounds K] [--layouts "PADS"] [--go user|system] [--out DIR]
#     --smp N     cores for the kernel; Go gets as many host CPUs (default: the host's count)
#     --go user   Go under qemu-user (the default: issue 12's targets are set against it)
#     --go system Go as the init of a Linux guest under qemu-system-x86_64 with TCG and --smp N
#                 cores (GO_WHERE=system bench/go-baseline.sh): the emulator mode the kernel runs
#                 in, where every load and store of both sides goes through QEMU's software TLB;
#                 qemu-user issues Go's as host loads and stores
#     --rounds K  interleaved rounds (default 5)
#     --layouts "PADS"
#                 the kernel's code layouts, one per round in turn (default "0 1040 2080 3120":
#                 round 1 boots the plain build, round 2 the build with every function 1040 bytes
#                 further on, ...; "0" boots the plain build in every round). See bench/relink.sh:
#                 where the linker put each function moves a figure by up to 1.5x under TCG, and
#                 every commit moves them, so one build's figure is partly its layout's luck
#     --out DIR   where compare.tsv, compare.svg (and .png) and the raw output go
#                 (default target/bench/compare-<time>)
#
# Figures are emulated time under TCG: both sides are x86 code translated by QEMU, so the ratio
# is the comparison; single rounds have differed by 2x, which is why only medians are claimed.
# Use a number of rounds that is a multiple of the number of layouts, so each counts as often.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
smp=$(nproc) rounds=5 out="" pads="0 1040 2080 3120" gomode=user
while [ $# -gt 0 ]; do
    case $1 in
        --smp) smp=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --layouts) pads=$2; shift 2 ;;
        --go) gomode=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
case $rounds in ''|*[!0-9]*|0) echo "compare.sh: --rounds needs a positive number" >&2; exit 64 ;; esac
case $smp in ''|*[!0-9]*|0) echo "compare.sh: --smp needs a positive number" >&2; exit 64 ;; esac
case $gomode in
    user) goprefix=go_qemu_ gowhere=qemu golabel="Go 1.19 under qemu-user" goshort="Go (qemu-user)" ;;
    system) goprefix=go_system_ gowhere=system golabel="Go 1.19 in a Linux guest under qemu-system" goshort="Go (Linux guest)" ;;
    *) echo "compare.sh: --go takes user or system, not '$gomode'" >&2; exit 64 ;;
esac
for p in $pads; do
    case $p in *[!0-9]*) echo "compare.sh: --layouts takes pad sizes in bytes, not '$p'" >&2; exit 64 ;; esac
done
[ -n "$pads" ] || { echo "compare.sh: --layouts needs at least one pad (0 is the plain build)" >&2; exit 64; }
out=${out:-target/bench/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# The set-up check of ./run-qemu.sh (toolchain, QEMU, firmware; it installs what is missing).
./run-qemu.sh --help > /dev/null
cargo build -q --bin gmpos
echo "== building the benchkernel (release) at layouts: $pads" >&2
bench/relink.sh kernel "$out/elf" "$pads"
set -- $pads
nlayouts=$#
# A fresh start in a reused --out directory: the rounds append here.
: > "$out/ratios.txt"
# Kernel benchmark names (the Go testing names) -> the Go baseline's, with a scale (a round
# trip is two messages).
ratios() {  # kernel.txt go.txt round -> "round name ratio kernel go" lines
    awk -v round="$3" -v prefix="$goprefix" '
        BEGIN {
            kmap["ChanSync"] = "chan_sync";             kscale["ChanSync"] = 1
            kmap["ChanProdCons0"] = "chan_prodcons0";   kscale["ChanProdCons0"] = 1
            kmap["ChanProdCons10"] = "chan_prodcons10"; kscale["ChanProdCons10"] = 1
            kmap["ChanProdCons100"] = "chan_prodcons100"; kscale["ChanProdCons100"] = 1
            kmap["ChanPingPong_p1"] = "chan_pingpong";  kscale["ChanPingPong_p1"] = 0.5
            kmap["ChanPingPong"] = "chan_pingpong_p2";  kscale["ChanPingPong"] = 0.5
        }
        FNR == NR {                       # kernel lines: "[cpuN] BENCH name value unit"
            for (i = 1; i <= NF; i++) if ($i == "BENCH") {
                n = $(i+1); v = $(i+2); un = $(i+3)
                if (n in kmap) { v = v * kscale[n]; n = kmap[n]; un = "ns/op" }
                k[n] = v; u[n] = un
            }
            next
        }
        $1 == "BENCH" && index($2, prefix) == 1 { g[substr($2, length(prefix) + 1)] = $3 }
        END {
            for (n in k) if (n in g && g[n] + 0 > 0 && k[n] + 0 > 0 && u[n] != "x")
                printf "%s %s %.4f %s %s\n", round, n, k[n] / g[n], k[n], g[n]
        }' "$1" "$2"
}
for r in $(seq 1 "$rounds"); do
    # Layout for this round: the pads in turn.
    pad=$(echo $pads | awk -v i="$(( (r - 1) % nlayouts + 1 ))" '{ print $i }')
    echo "== round $r of $rounds: kernel (layout: pad $pad bytes, --smp $smp)" >&2
    target/debug/gmpos --kernel "$out/elf/benchkernel-$pad.elf" --smp "$smp" --timeout 900 > "$out/kernel-$r.txt" 2>&1 || true
    echo "== round $r of $rounds: $golabel (bench/go-baseline.sh)" >&2
    env -u ICOUNT GO_WHERE="$gowhere" GO_SMP="$smp" bench/go-baseline.sh > "$out/go-$r.txt" 2>"$out/go-$r.err" || true
    ratios "$out/kernel-$r.txt" "$out/go-$r.txt" "$r" >> "$out/ratios.txt"
done
if [ ! -s "$out/ratios.txt" ]; then
    echo "compare.sh: no benchmark common to both sides; see $out/kernel-1.txt and $out/go-1.txt" >&2
    exit 1
fi
# Median, min and max of each benchmark's ratios (POSIX awk + sort).
{
    echo "# kernel / ${goprefix%_} time ratio, -smp $smp, $rounds interleaved rounds over kernel layouts (pads) $pads: name median min max"
    for n in $(awk '{ print $2 }' "$out/ratios.txt" | sort -u); do
        awk -v n="$n" '$2 == n { print $3 }' "$out/ratios.txt" | sort -g |
            awk -v n="$n" '{ v[NR] = $1 } END { printf "%s\t%.3f\t%.3f\t%.3f\n", n, v[int((NR + 1) / 2)], v[1], v[NR] }'
    done
} > "$out/compare.tsv"
printf "%-24s %8s %8s %8s  %s\n" benchmark median min max "(kernel / $golabel; below 1.0 = kernel faster)"
grep -v '^#' "$out/compare.tsv" | sort -t "$(printf '\t')" -k2 -g | while IFS="$(printf '\t')" read -r n m lo hi; do
    wide=$(awk -v lo="$lo" -v hi="$hi" 'BEGIN { if (hi / lo > 1.5) print "  WIDE: min-max spread over 1.5x, more rounds needed" }')
    printf "%-24s %8s %8s %8s%s\n" "$n" "$m" "$lo" "$hi" "$wide"
    echo "BENCH ratio_$n $m x"
done
target/debug/gmpos bench-chart "$out/compare.tsv" -o "$out/compare.svg" \
    --title "kernel / $golabel: median of $rounds interleaved rounds ($nlayouts kernel layouts), -smp $smp" \
    --ref-label "$goshort" >&2 || true
echo "compare.sh: figures in $out (compare.tsv, compare.svg, raw output per round)" >&2
