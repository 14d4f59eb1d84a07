//! Benchmarks: `./run-qemu.sh --release bench` (all) or `... bench bench=NAME`.
//!
//! Each benchmark prints one machine-readable line
//! `BENCH <name> <value> <unit>` (value in emulated time), plus, where a
//! baseline measured in the same run makes sense, a `BENCH <name>_ratio`
//! line. Benchmarks are measured, never asserted.
#![no_std]
#![no_main]

extern crate alloc;

mod chan;
mod insn;
mod sched;
mod workload;

use kernel::println;

kernel::main!(main);

pub type Bench = (&'static str, fn());

fn all() -> impl Iterator<Item = &'static Bench> {
    sched::BENCHES.iter().chain(chan::BENCHES.iter()).chain(workload::BENCHES.iter()).chain(insn::BENCHES.iter())
}

/// Print one result line.
pub fn report(name: &str, value: f64, unit: &str) {
    // No float formatting in core without soft-float fmt support worries:
    // print with 1 decimal via integers.
    let v10 = (value * 10.0) as u64;
    println!("BENCH {name} {}.{} {unit}", v10 / 10, v10 % 10);
}

fn main() {
    let only = kernel::boot::params().bench.as_ref().map(|n| n.as_str());
    let mut ran = 0;
    for (name, f) in all() {
        if only.is_none_or(|o| o == *name) {
            f();
            ran += 1;
        }
    }
    if ran == 0 {
        println!("unknown benchmark \"{}\"; known:", only.unwrap_or(""));
        for (n, _) in all() {
            println!("  {n}");
        }
        kernel::arch::x86_64::exit::exit_failure();
    }
    println!("BENCH done {ran} benchmarks on {} cores, gomaxprocs={}", kernel::num_cpu(), kernel::current_gomaxprocs());
}
