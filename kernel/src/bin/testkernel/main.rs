//! The scenario kernel: every scenario is a `#[ktest]` function in one of the modules below,
//! with its core counts, boot parameters and expected outcome beside it.
//!
//! Run them with the test runner: `cargo run -- test` (all), `cargo run -- test sched::`
//! (a filter), `cargo run -- test --list`. By hand, one scenario with live output:
//! `cargo run -- --bin testkernel --smp 4 test=sched::spawn_storm`.
//!
//! A scenario passes by returning; it fails through a panic or a fatal error (QEMU exits
//! with the failure status). It asserts what it checks inside the kernel; `output = [...]`
//! in its `#[ktest]` lists lines the runner must also find on the console (for the reports
//! of scenarios that must fail, which the kernel cannot check after dying).
#![no_std]
#![no_main]

extern crate alloc;

mod bringup;
mod chan;
mod gdbstate;
mod lab1;
mod lab2;
mod lab3;
mod lab4;
mod lab5;
mod lab6;
mod lab7;
mod lab8;
mod latch;
mod mem;
mod preempt;
mod regress;
mod sched;
mod torture;
mod trace;

kernel::main!(main);

/// Booted without `test=`: say how to run the scenarios, and fail.
fn main() {
    kernel::println!("testkernel: no test= boot parameter; run the scenarios with `cargo run -- test`");
    kernel::println!("(list them with `cargo run -- test --list`, or boot one with test=NAME)");
    kernel::arch::x86_64::exit::exit_failure();
}
