//! QEMU's `isa-debugcon` device at I/O port 0xe9: a byte-wide, binary-safe
//! output channel. The runner connects it to a file for `--trace FILE` /
//! `--profile FILE` (`-chardev file,... -device isa-debugcon,iobase=0xe9`).
//! Without the device, writes to the port are ignored by QEMU.

const PORT: u16 = 0xe9;

/// Write `bytes` to the debug console with `rep outsb`.
pub fn write(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: `rep outsb` reads `rcx` bytes from `[rsi]` (inside `bytes`)
    // and writes them to port `dx`; the port has no effect on memory.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") PORT,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, readonly, preserves_flags)
        );
    }
}
