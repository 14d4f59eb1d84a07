//! Benchmarks (`./run-qemu.sh --release bench`). Each prints
//! `BENCH <name> <value> <unit>`.
#![no_std]
#![no_main]

kernel::main!(main);

fn main() {
    kernel::println!("bench: not yet");
}
