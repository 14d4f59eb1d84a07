#!/usr/bin/env bash
# The newcomer's entry point.
#
#   ./run-qemu.sh [RUNNER ARGS]    build the demo kernel and boot it in QEMU (cargo run -- ARGS);
#                                  e.g. ./run-qemu.sh --smp 2 gomaxprocs=2 schedtrace=1000
#   ./run-qemu.sh test [FILTER]    the whole suite (cargo test --workspace): host unit, property
#                                  and loom tests, and the QEMU scenario tests
#   ./run-qemu.sh torture [OPTS]   the random torture campaign (gmpos-campaign; --help for options)
#   ./run-qemu.sh grade LAB [OPTS] grade a course lab: a line per test, then Score: X/100
#                                  (gmpos-lab grade; labs/README.md)
#   ./run-qemu.sh lab CMD ...      the lab tool itself: gen, solve, check, list (gmpos-lab)
#   ./run-qemu.sh --help           the runner's options
#
# First it checks the set-up (quietly once everything is there): the pinned Rust toolchain,
# qemu-system-x86_64 and the OVMF firmware. A set-up that cannot be fixed here exits 3, the
# runner's code for "build or launch error" (1 means "the kernel failed").
#
# A run `exec`s the runner (cargo run replaces itself with it too), so the PID of this script is
# the runner's: a SIGTERM or Ctrl-C reaches it, and it stops QEMU and removes its temp files.
set -euo pipefail
# The checkout this script is in, also when it is run through a symlink.
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

say() { printf 'run-qemu.sh: %s\n' "$*" >&2; }

# --- set-up --------------------------------------------------------------------------------

if ! command -v rustup >/dev/null 2>&1; then
    say "rustup is not installed. Install it with:"
    say "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none"
    say "then open a new shell (or: source \"\$HOME/.cargo/env\") and run this script again."
    exit 3
fi

# The toolchain pinned in rust-toolchain.toml, with its components and the kernel target.
# (Auto-install is off on some machines: RUSTUP_AUTO_INSTALL=0.)
toolchain=$(sed -n 's/^[[:space:]]*channel[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' rust-toolchain.toml)
toolchain_ready() {
    [ -n "$toolchain" ] &&
        rustup run "$toolchain" rustc --version >/dev/null 2>&1 &&
        rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx 'x86_64-unknown-none' &&
        rustup component list --installed --toolchain "$toolchain" 2>/dev/null | grep -q '^rust-src' &&
        rustup component list --installed --toolchain "$toolchain" 2>/dev/null | grep -q '^llvm-tools'
}
if ! toolchain_ready; then
    say "installing the Rust toolchain pinned in rust-toolchain.toml (${toolchain:-?})"
    rustup toolchain install
fi

have_ovmf() { [ -d /usr/share/OVMF ] || [ -d /usr/share/ovmf ]; }
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! have_ovmf; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing QEMU and OVMF"
        if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-system-x86 ovmf; }; then
            say "installing QEMU and OVMF with apt-get failed"
            exit 3
        fi
    else
        say "QEMU (qemu-system-x86_64) and/or the OVMF firmware are missing. Install them with:"
        say "  sudo apt-get update && sudo apt-get install -y qemu-system-x86 ovmf"
        exit 3
    fi
fi

# --- test ----------------------------------------------------------------------------------

if [ "${1:-}" = "test" ]; then
    shift
    filter="${1:-}"
    # Everything: the runner's and kernel/core's unit and property tests,
    # the loom models (tests/loom.rs runs them in a nested cargo with
    # --cfg loom and its own target dir), and the QEMU scenario tests.
    # cargo runs in the background so that a SIGTERM/SIGINT/SIGHUP to this
    # script can be passed on to it; each test binary dies with cargo
    # (boot::cleanup::exit_with_parent) and takes its QEMUs along.
    cargo test --workspace ${filter:+"$filter"} &
    cargo_pid=$!
    trap 'kill -TERM "$cargo_pid" 2>/dev/null || true' TERM INT HUP
    status=0
    wait "$cargo_pid" || status=$?
    # A trapped signal interrupts `wait`; wait again for cargo's own end.
    while kill -0 "$cargo_pid" 2>/dev/null; do
        status=0
        wait "$cargo_pid" || status=$?
    done
    trap - TERM INT HUP
    if [ "$status" -ne 0 ]; then
        say "FAILED (exit $status): cargo test --workspace${filter:+ $filter}"
        exit "$status"
    fi
    say "ALL TESTS PASSED${filter:+ (filter: $filter)}"
    exit 0
fi

# --- torture campaign ----------------------------------------------------------------------

if [ "${1:-}" = "torture" ]; then
    shift
    # Random boots of the torture scenario and other scenarios until --duration has passed;
    # `./run-qemu.sh torture --help` for the options.
    exec cargo run -q --bin gmpos-campaign -- "$@"
fi

# --- course labs ---------------------------------------------------------------------------

if [ "${1:-}" = "grade" ]; then
    shift
    # One line per graded test, then `Score: X/100`; exit status 0 only with full marks.
    # `./run-qemu.sh grade lab1 --help` lists the options (--json FILE, --hidden DIR, ...).
    exec cargo run -q --bin gmpos-lab -- grade "$@"
fi
if [ "${1:-}" = "lab" ]; then
    shift
    exec cargo run -q --bin gmpos-lab -- "$@"
fi

# --- run -----------------------------------------------------------------------------------

for arg in "$@"; do
    case $arg in -h | --help) exec cargo run -q -- --help ;; esac
done

# The runner's own --release picks the kernel's build profile; the runner itself is built in dev.
# It prints the verdict and exits with the documented status (README, "Running").
exec cargo run -- "$@"
