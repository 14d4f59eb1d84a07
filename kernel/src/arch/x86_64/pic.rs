//! The legacy 8259 PICs. We use the local APIC only, but the PICs must be
//! remapped away from the exception vectors and masked, or a stray legacy IRQ
//! would arrive as a fake "double fault" on vector 8.
use x86_64::instructions::port::Port;

/// Remap both PICs to vectors 0x20..0x30 and mask every line.
pub fn disable() {
    // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the two 8259s on every PC; the
    // ICW1..ICW4 sequence below is the standard initialisation, after which
    // all lines are masked so the PICs never raise an interrupt.
    unsafe {
        let mut cmd1 = Port::<u8>::new(0x20);
        let mut data1 = Port::<u8>::new(0x21);
        let mut cmd2 = Port::<u8>::new(0xa0);
        let mut data2 = Port::<u8>::new(0xa1);
        cmd1.write(0x11);
        cmd2.write(0x11);
        data1.write(0x20);
        data2.write(0x28);
        data1.write(4);
        data2.write(2);
        data1.write(1);
        data2.write(1);
        data1.write(0xff);
        data2.write(0xff);
    }
}
