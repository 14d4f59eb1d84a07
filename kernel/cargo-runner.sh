#!/bin/sh
# cargo's runner for the kernel target (kernel/.cargo/config.toml): `cargo run` and
# `cargo test` inside kernel/ hand the built ELF to the host runner in ../boot, as blog_os
# readers expect.
#   cargo run --bin kernel -- --smp 2 schedtrace=100   ->  gmpos --kernel ELF --smp 2 ...
#   cargo test [-- FILTER...]                          ->  gmpos test --kernel ELF FILTER...
set -eu
elf=$(realpath "$1")
shift
root=$(cd "$(dirname "$0")/.." && pwd)
# From the repository root: kernel/.cargo/config.toml must not make the runner itself a
# bare-metal build.
cd "$root"
case $elf in
*/deps/* | */build/*) exec cargo run -q --manifest-path "$root/Cargo.toml" -- test --kernel "$elf" "$@" ;;
*) exec cargo run -q --manifest-path "$root/Cargo.toml" -- --kernel "$elf" "$@" ;;
esac
