#!/usr/bin/env bash
# Build a benchkernel (release) once per code layout: OUT/benchkernel-PAD.elf for each PAD.
#
#   bench/relink.sh KERNEL_DIR OUT_DIR "PADS"        e.g. bench/relink.sh kernel /tmp/x "0 1040 2080 3120"
#
# Under TCG, where the linker put each function decides part of a benchmark's time: a `ret`, an
# indirect jump and a jump to another 4 KiB page look their target up in the vCPU's jump cache,
# whose softmmu hash gives one code page 64 entries, and two hot targets that share an entry evict
# each other on every operation (bench/README.md, "Where the code lies matters"). Every change
# moves every function after it, so one build's figure is the code's cost *and* its layout's luck.
# bench/layouts.sh and bench/compare.sh measure over several layouts made here.
#
# How: the benchkernel is relinked (`cargo rustc`, only the final link changes) with an object
# file holding PAD bytes of `int3`, put at the start of `.text` by `--symbol-ordering-file` (after
# the one page-aligned function, `insn::jump_pair`, which would otherwise realign everything after
# it to the same page offsets). Every kernel function then lies PAD bytes further on: other page
# splits, other jump-cache entries, the same code. Pad 0 is the plain build. The tree's own build
# is left as a plain one. Needs `as` (binutils) and `nm`.
set -euo pipefail
kdir=${1:?usage: bench/relink.sh KERNEL_DIR OUT_DIR PADS} out=${2:?usage: bench/relink.sh KERNEL_DIR OUT_DIR PADS}
pads=${3:?usage: bench/relink.sh KERNEL_DIR OUT_DIR PADS}
for p in $pads; do
    case $p in *[!0-9]*) echo "relink.sh: a pad is a byte count, not '$p'" >&2; exit 64 ;; esac
done
for tool in as nm; do
    command -v $tool >/dev/null || { echo "relink.sh: needs '$tool' (binutils: apt-get install binutils)" >&2; exit 69; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
elf=$kdir/target/x86_64-unknown-none/release/benchkernel
(cd "$kdir" && cargo build -q --release --bin benchkernel)
# The page-aligned function that must stay first (absent from older trees: then nothing).
first=$(nm "$elf" | awk '$3 ~ /jump_pair/ && !n++ { print $3 }')
{ [ -n "$first" ] && echo "$first"; echo gmpos_layout_pad; } > "$out/order.txt"
for pad in $pads; do
    {
        printf '.section .text.gmpos_layout_pad,"ax",@progbits\n.globl gmpos_layout_pad\n'
        printf '.type gmpos_layout_pad, @function\ngmpos_layout_pad:\n'
        if [ "$pad" -gt 0 ]; then printf '.skip %d, 0xcc\n' "$pad"; fi
        printf '.size gmpos_layout_pad, . - gmpos_layout_pad\n'
    } | as --64 -o "$out/pad$pad.o"
    (cd "$kdir" && cargo rustc -q --release --bin benchkernel -- \
        -C link-arg="$out/pad$pad.o" -C link-arg=--symbol-ordering-file="$out/order.txt" \
        -C link-arg=--undefined=gmpos_layout_pad)
    # The pad must be there, at its size, and before the kernel's code (the scheduler), or
    # every figure would be of the same layout.
    size=$(nm -S "$elf" | awk '$4 == "gmpos_layout_pad" { print $2 }')
    if [ "$((16#${size:-0}))" -ne "$pad" ]; then
        echo "relink.sh: the build in $kdir has no $pad-byte pad (nm: '${size:-none}')" >&2
        exit 70
    fi
    at=$(nm "$elf" | awk '$3 == "gmpos_layout_pad" { print toupper($1) }')
    sched=$(nm "$elf" | awk '$3 ~ /proc8schedule$/ { print toupper($1) }')
    if [ -z "$sched" ] || [ "$(printf '%s\n%s\n' "$at" "$sched" | sort | head -n 1)" != "$at" ]; then
        echo "relink.sh: the pad (at ${at:-?}) is not before the scheduler (at ${sched:-?}): the link order did not take" >&2
        exit 70
    fi
    cp "$elf" "$out/benchkernel-$pad.elf"
done
rm -f "$out"/pad*.o "$out/order.txt"
# Leave the tree's own build as it was (no pad object).
(cd "$kdir" && cargo build -q --release --bin benchkernel)
