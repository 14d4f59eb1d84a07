//! The 8254 PIT, used only as a reference clock to calibrate the TSC and the
//! LAPIC timers. Channel 2 is gated through port 0x61 and read back with the
//! latch command, so no PIT interrupt is ever taken.
//!
//! Under emulation a vCPU can lose the host CPU at any instruction. Waiting
//! for the PIT's terminal count and *then* sampling the other counter would
//! charge such a gap to the other counter. Instead we read the PIT count and
//! the other counter back to back at the start and at the end, bracket each
//! pair with a second PIT read, and retry a measurement whose pair was split
//! by a gap.
//!
//! A gap can also hide *inside* the interval: the PIT counts down 16 bits in
//! mode 2 and reloads, so a vCPU that loses the host CPU for more than 55 ms
//! while waiting sees the count wrap, and takes a short PIT distance for a
//! long real one. So the PIT measures only the TSC (`time::calibrate`, which
//! wants two measurements that agree), and everything else is measured
//! against the TSC (`time::measure_against_tsc`), which cannot wrap.
//! On a host so loaded that no sample is clean, the least disturbed one is
//! used and a warning printed: never a panic at boot.
use spin::Mutex;
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
/// Largest PIT distance (ticks, ~40 us) accepted between the two reads that
/// bracket a sample.
const MAX_BRACKET: u64 = 48;
/// Channel 2 is one shared device: cores calibrate one at a time.
static PIT: Mutex<()> = Mutex::new(());

/// Latch and read channel 2's current count.
fn read_count() -> u16 {
    // SAFETY: ports 0x42/0x43 are the PIT's channel 2 and command register;
    // only this module uses them, under the PIT lock.
    unsafe {
        Port::<u8>::new(0x43).write(0b1000_0000); // latch channel 2
        let mut ch2 = Port::<u8>::new(0x42);
        let lo = ch2.read() as u16;
        let hi = ch2.read() as u16;
        (hi << 8) | lo
    }
}

/// (PIT count, other sample, TSC, PIT count): a bracketed sample.
fn bracket(sample: &impl Fn() -> u64) -> (u16, u64, u64, u16) {
    let a = read_count();
    let s = sample();
    let t = super::time::rdtsc();
    let b = read_count();
    (a, s, t, b)
}

/// Run a `ms`-millisecond PIT interval (at most 50) and return the TSC ticks
/// it took, scaled to exactly `ms` of PIT time.
pub fn measure_tsc(ms: u64) -> u64 {
    measure(ms, || 0).0
}

/// As `measure_tsc`, also returning the `sample()` difference (`sample`
/// reads some other counter).
fn measure(ms: u64, sample: impl Fn() -> u64) -> (u64, u64) {
    assert!(ms > 0 && ms <= 50);
    let want = PIT_HZ * ms / 1000;
    let _guard = PIT.lock();
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut best: Option<(u64, u64)> = None;
        // The least disturbed sample, if none is clean: (gaps, result).
        let mut fallback: Option<(u64, (u64, u64))> = None;
        for _ in 0..32 {
            // SAFETY: port 0x61 gates channel 2 (bit 0) and the speaker
            // (bit 1); ports 0x42/0x43 as in read_count.
            let g = unsafe {
                let mut gate = Port::<u8>::new(0x61);
                let g = gate.read();
                gate.write((g & !0x02) | 0x01); // gate high, speaker off
                Port::<u8>::new(0x43).write(0b1011_0100); // ch2, lo/hi, mode 2, binary
                let mut ch2 = Port::<u8>::new(0x42);
                ch2.write(0xff);
                ch2.write(0xff);
                g
            };
            // Let the new count load.
            while read_count() == 0 {}
            let (a0, s0, t0, b0) = bracket(&sample);
            let mut elapsed;
            loop {
                let c = read_count();
                elapsed = a0.wrapping_sub(c) as u64;
                if elapsed >= want {
                    break;
                }
                core::hint::spin_loop();
            }
            let (a1, s1, t1, b1) = bracket(&sample);
            // SAFETY: restore the gate/speaker bits.
            unsafe { Port::<u8>::new(0x61).write(g) };
            let gap0 = a0.wrapping_sub(b0) as u64;
            let gap1 = a1.wrapping_sub(b1) as u64;
            let pit = a0.wrapping_sub(a1) as u64;
            if pit == 0 || pit > 0xf000 {
                continue;
            }
            let tsc = (t1 - t0) as u128 * want as u128 / pit as u128;
            let other = s1.wrapping_sub(s0) as u128 * want as u128 / pit as u128;
            let r = (tsc as u64, other as u64);
            if gap0 > MAX_BRACKET || gap1 > MAX_BRACKET {
                // This vCPU lost the host CPU mid-sample: retry.
                if fallback.is_none_or(|(g, _)| gap0 + gap1 < g) {
                    fallback = Some((gap0 + gap1, r));
                }
                continue;
            }
            best = Some(r);
            break;
        }
        best.unwrap_or_else(|| {
            let (gaps, r) = fallback.unwrap_or((0, (0, 0)));
            crate::println!("time: warning: no clean PIT sample in 32 tries (host overloaded); using one off by up to {gaps} PIT ticks");
            r
        })
    })
}
