//! The 8254 PIT, used only as a reference clock to calibrate the TSC and the
//! LAPIC timers. Channel 2 is gated through port 0x61 and polled, so no PIT
//! interrupt is ever taken.
use spin::Mutex;
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
/// Channel 2 is one shared device: cores calibrate one at a time.
static PIT: Mutex<()> = Mutex::new(());

/// Run a `ms`-millisecond PIT interval (at most 50) and return the TSC ticks
/// it took and `(sample() at end).wrapping_sub(sample() at start)`, where
/// `sample` reads some other counter (e.g. the LAPIC current count).
pub fn measure(ms: u64, sample: impl Fn() -> u64) -> (u64, u64) {
    assert!(ms > 0 && ms <= 50);
    let count = (PIT_HZ * ms / 1000) as u16;
    let _guard = PIT.lock();
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: ports 0x42/0x43/0x61 are the PIT's channel 2 and the
        // PC speaker/gate port; only this function uses them, under PIT.
        unsafe {
            let mut gate = Port::<u8>::new(0x61);
            let mut cmd = Port::<u8>::new(0x43);
            let mut ch2 = Port::<u8>::new(0x42);
            let g = gate.read();
            gate.write(g & !0x03); // gate low, speaker off
            cmd.write(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
            ch2.write(count as u8);
            ch2.write((count >> 8) as u8);
            let t0 = super::time::rdtsc();
            let s0 = sample();
            gate.write((g & !0x02) | 0x01); // gate high: counting starts
            while gate.read() & 0x20 == 0 {
                core::hint::spin_loop();
            }
            let s1 = sample();
            let t1 = super::time::rdtsc();
            gate.write(g & !0x03);
            (t1 - t0, s1.wrapping_sub(s0))
        }
    })
}
