//! The scenario kernel: `test=NAME` picks one scenario. Exit status 0 means
//! the scenario's own assertions held.
#![no_std]
#![no_main]

kernel::main!(main);

fn main() {
    kernel::println!("testkernel");
}
