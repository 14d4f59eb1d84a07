//! The serial console (COM1 through `uart_16550`).
//!
//! Every line is prefixed with the CPU id, and a whole `println!` is written
//! under one lock, so lines from different cores never interleave mid-line.
//! The lock is taken with interrupts disabled, so an interrupt handler on the
//! same core can print too. A fatal-error path that finds the lock held by
//! its own core (it faulted while printing) breaks the lock instead of
//! deadlocking: see [`emergency`].
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550};

type SerialPort = Uart16550<PioBackend>;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);
/// Which core holds `PORT` (+1; 0 = none). Written right after taking and
/// right before releasing the lock; read only by `emergency` on the fault path.
static OWNER: AtomicUsize = AtomicUsize::new(0);
/// Set once the per-CPU GS base is valid on the boot core.
static PERCPU_READY: AtomicBool = AtomicBool::new(false);

/// COM1 at 115200 baud, 8N1 (the baud rate matters on a real serial line
/// only; QEMU ignores it). A machine without COM1 (the scratch-register
/// check fails) gets no console: prints are dropped, nothing hangs.
pub fn init() {
    // SAFETY: 0x3f8 is COM1 on every PC and QEMU; nothing else drives it,
    // and its 8 registers are all in port space.
    let Ok(mut port) = (unsafe { SerialPort::new_port(0x3f8) }) else {
        return;
    };
    let config = Config { baud_rate: BaudRate::Baud115200, ..Config::DEFAULT };
    if port.init(config).is_ok() {
        *PORT.lock() = Some(port);
    }
}

pub fn percpu_ready() {
    PERCPU_READY.store(true, Ordering::Release);
}

fn cpu() -> usize {
    if PERCPU_READY.load(Ordering::Acquire) {
        super::percpu::cpu_id()
    } else {
        0
    }
}

struct LineWriter<'a> {
    port: &'a mut SerialPort,
    cpu: usize,
    at_line_start: bool,
}

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.at_line_start {
                self.at_line_start = false;
                let _ = write!(PrefixSink(self.port), "[cpu{}] ", self.cpu);
            }
            if b == b'\n' {
                self.at_line_start = true;
            }
            self.port.send_bytes_exact(&[b]);
        }
        Ok(())
    }
}

struct PrefixSink<'a>(&'a mut SerialPort);
impl Write for PrefixSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.0.send_bytes_exact(&[b]);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let cpu = cpu();
        let mut guard = PORT.lock();
        OWNER.store(cpu + 1, Ordering::Relaxed);
        if let Some(port) = guard.as_mut() {
            let mut w = LineWriter { port, cpu, at_line_start: true };
            let _ = w.write_fmt(args);
        }
        OWNER.store(0, Ordering::Relaxed);
    });
}

/// Print on the fatal-error path. If this very core holds the console lock
/// (it faulted in the middle of a print), the lock can never be released, so
/// break it; any other holder is given a bounded time to finish.
pub fn emergency(args: fmt::Arguments) {
    let cpu = cpu();
    if OWNER.load(Ordering::Relaxed) == cpu + 1 {
        // SAFETY: the holder is this core, which is not going to resume the
        // interrupted print; no one else can be inside the critical section.
        unsafe { PORT.force_unlock() };
    } else {
        for _ in 0..10_000_000 {
            if !PORT.is_locked() {
                break;
            }
            core::hint::spin_loop();
        }
        if PORT.is_locked() {
            // SAFETY: best effort on the way to exiting QEMU: the holder on
            // another core is stuck or gone; a garbled line beats a hang.
            unsafe { PORT.force_unlock() };
        }
    }
    _print(args);
}


/// `print!` to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::arch::x86_64::serial::_print(format_args!($($arg)*)));
}

/// `println!` to the serial console; the line is prefixed with `[cpuN] `.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::arch::x86_64::serial::_print(format_args!("{}\n", format_args!($($arg)*))));
}
