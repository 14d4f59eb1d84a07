# Shared by bench/interleave.sh and bench/layouts.sh (sourced, not run).

# boot_bench PREFIX ELF SMP BENCH [ARGS...]: boot ELF with bench=BENCH and print its result lines
# as "PREFIX name value unit" (nothing if the boot failed: a missing figure is reported later).
boot_bench() {
    local prefix=$1 elf=$2 smp=$3 b=$4
    shift 4
    target/debug/gmpos --kernel "$elf" --smp "$smp" --timeout 300 bench="$b" "$@" 2>/dev/null \
        | grep -o 'BENCH .*' | grep -v 'BENCH done' | sed "s/^BENCH/$prefix BENCH/" || true
}

# median: the median of the numbers on stdin, one per line (POSIX awk + sort: no gawk needed).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
