//! Leaving QEMU through the `isa-debug-exit` device at port 0xf4.
//!
//! Writing `v` makes QEMU exit with status `(v << 1) | 1`, so the kernel can
//! never produce 0. The runner in `boot/` maps 33 to success and 35 to failure.
use x86_64::instructions::port::Port;

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;
/// QEMU exits with 33.
const EXIT_SUCCESS: u32 = 0x10;
/// QEMU exits with 35.
const EXIT_FAILURE: u32 = 0x11;

fn exit_qemu(code: u32) -> ! {
    // Nothing to flush: the UART driver waits for each byte to be sent.
    // SAFETY: port 0xf4 is the isa-debug-exit device that the runner always
    // adds; writing it has no effect on memory. On real hardware the write is
    // ignored and we fall through to the halt below.
    unsafe { Port::<u32>::new(ISA_DEBUG_EXIT_PORT).write(code) };
    super::halt_forever()
}

/// The program's `main` returned: exit with success, as Go's `exit(0)`.
pub fn exit_success() -> ! {
    exit_qemu(EXIT_SUCCESS)
}

/// A fatal error has been reported: exit with failure.
pub fn exit_failure() -> ! {
    exit_qemu(EXIT_FAILURE)
}
