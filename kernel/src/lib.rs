//! A bare-metal x86_64 kernel whose scheduler is Go's GMP scheduler.
//!
//! This crate is the runtime, as a library: a kernel program links it and
//! supplies a `main`, as a Go program links Go's runtime:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! kernel::main!(main);
//! fn main() {
//!     kernel::go(|| kernel::println!("hello from a goroutine"));
//!     kernel::gosched();
//! }
//! ```
//!
//! Every core comes up as an M with its own g0 stack; `gomaxprocs` Ps are
//! handed out to them; goroutines (Gs) are scheduled with Go's rules. Read
//! `runtime/proc.rs` beside Go's `runtime/proc.go`.
#![no_std]
#![feature(abi_x86_interrupt)]
#![feature(rust_cold_cc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod ktest;
pub mod mem;
pub mod runtime;
pub mod sync;

pub use bootloader_api;
pub use runtime::api::*;
pub use sync::{
    after, Chan, Mutex, MutexGuard, Once, RawMutex, Receiver, Semaphore, Timer, TryRecvError, WaitGroup,
};

/// The bootloader configuration every kernel binary uses: all of physical
/// memory mapped (the frame allocator and page tables need it) and a 256 KiB
/// boot stack (m0's g0 stack).
pub const BOOTLOADER_CONFIG: bootloader_api::BootloaderConfig = {
    let mut c = bootloader_api::BootloaderConfig::new_default();
    c.mappings.physical_memory = Some(bootloader_api::config::Mapping::Dynamic);
    c.kernel_stack_size = 256 * 1024;
    c
};

/// Declare the program's `main`: `kernel::main!(my_main);`. The kernel boots
/// every core, starts the scheduler and runs `my_main` as goroutine 1. When
/// it returns, the kernel exits with status 0 (QEMU exits, the runner
/// returns 0), as a Go program exits when `main.main` returns.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        $crate::bootloader_api::entry_point!(__kernel_entry, config = &$crate::BOOTLOADER_CONFIG);
        fn __kernel_entry(info: &'static mut $crate::bootloader_api::BootInfo) -> ! {
            // With `test=NAME` the binary's #[ktest]s run instead of main.
            $crate::ktest::set_main($main);
            $crate::boot::kernel_start(info, $crate::ktest::entry)
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    runtime::fatal::panic(info)
}
