//! Boot parameters: the kernel's `GOMAXPROCS` and `GODEBUG`.
//!
//! They arrive as `(key, value)` string pairs, one per QEMU fw_cfg file named
//! `opt/gmp/<key>` (`-fw_cfg name=opt/gmp/gomaxprocs,string=2`). The kernel
//! reads each file and calls [`BootParams::apply`]; on error it prints the
//! [`ParamError`] and the [`KNOWN`] list, and stops. Keys and values are
//! trimmed of surrounding whitespace and NUL bytes; everything else is
//! strict (no signs, no `0x`, no `true`/`false`), so that a typo is reported
//! instead of silently meaning something else.
//!
//! No allocation: names are kept in a small fixed buffer ([`ArrayStr`]).

use core::fmt;

/// The accepted keys with one line of help each, in the order the kernel
/// prints them.
pub const KNOWN: &[(&str, &str)] = &[
    ("gomaxprocs", "number of Ps, 1..=number of cores (default: number of cores)"),
    ("schedtrace", "print a scheduler trace line every N ms, 0..=60000 (default 0 = off)"),
    ("scheddetail", "1 = detailed schedtrace (every P, M and G), 0 = summary (default 0)"),
    ("schedrandom", "1 = randomize runnext and run-queue batches, like Go's race mode (default 0)"),
    ("test", "name (or glob) of the test(s) to run, [a-z0-9_:*-]{1,64}"),
    ("bench", "name of the built-in benchmark to run, [a-z0-9_-]{1,64}"),
    ("heap", "a fixed kernel heap of this many bytes, optional K/M/G suffix, 1M..=1G (default: starts at 32M and grows with use)"),
    ("forcepreemptns", "time slice before sysmon preempts a G, ns, 100000..=10000000000 (default 10000000)"),
    ("hz", "timer/sysmon tick rate in Hz, 10..=10000 (default 1000)"),
    ("asyncpreemptoff", "1 = no asynchronous preemption, only cooperative safe points (Go's GODEBUG knob; default 0)"),
    ("seed", "seed of the scheduler's random generators and of a scenario's random choices (the torture test), a u64 (default: from the TSC)"),
    ("duration", "how long a timed scenario (the torture test) runs, seconds, 1..=86400 (default 10)"),
    ("skipap", "N = start core #N of the ACPI MADT (1..=cores-1) only after the AP timeout, as a core too slow to answer, to test that path; 0 = start every core (default)"),
    ("trace", "execution tracer: 0 = off, 1 = keep the first tracebuf events per core, flight = keep the last ones (default 0)"),
    ("tracebuf", "tracer events per core, 1024..=4194304, rounded up to a power of two (default 32768)"),
    ("profile", "CPU profiler: sample every core this many times a second, 0 or 10..=10000 (default 0 = off)"),
    ("case", "case of a parameterized test, [a-z0-9_-]{1,64}"),
    ("x2apic", "1 = drive the local APICs in x2APIC mode when the CPU offers it, 0 = always xAPIC (default 1)"),
    ("haltpoll", "1 = a parking core polls its note for an adaptive window (50..200 us) before it halts, Linux's cpuidle-haltpoll; 0 = halt at once (default 0)"),
];

/// Most boot parameters one boot can carry. The kernel reads at most this
/// many `opt/gmp/` fw_cfg files, and the runner refuses more: QEMU's fw_cfg
/// directory has 32 file slots in all, QEMU itself fills about a dozen (ACPI
/// tables, e820 map, boot order, VGA ROM, ...), and one more file than fits
/// aborts QEMU with an assertion (QEMU 7.2 here aborted at 21). 19 is the number of keys.
pub const MAX_PARAMS: usize = 19;

/// Largest `skipap`: the last MADT position the kernel would start (it
/// drives at most `order::MAX_PROCS` cores, the boot core at position 0).
pub const SKIPAP_MAX: u32 = crate::order::MAX_PROCS - 1;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Smallest and largest accepted `heap`.
pub const HEAP_MIN: usize = MIB as usize;
/// See [`HEAP_MIN`].
pub const HEAP_MAX: usize = GIB as usize;
/// The size a growable heap (no `heap=`) starts at.
pub const HEAP_INITIAL: usize = 32 * MIB as usize;
/// Largest accepted `schedtrace` (one minute).
pub const SCHEDTRACE_MAX_MS: u32 = 60_000;
/// Range of `forcepreemptns`: 0.1 ms to 10 s.
pub const FORCEPREEMPT_MIN_NS: u64 = 100_000;
/// See [`FORCEPREEMPT_MIN_NS`].
pub const FORCEPREEMPT_MAX_NS: u64 = 10_000_000_000;
/// Largest accepted `duration` (one day).
pub const DURATION_MAX_S: u32 = 86_400;
/// Range of `tracebuf`.
pub const TRACEBUF_MIN: u32 = 1024;
/// See [`TRACEBUF_MIN`].
pub const TRACEBUF_MAX: u32 = 1 << 22;
/// Range of `hz`.
pub const HZ_MIN: u32 = 10;
/// See [`HZ_MIN`].
pub const HZ_MAX: u32 = 10_000;

/// A string of at most `N` bytes stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ArrayStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> ArrayStr<N> {
    /// The empty string.
    pub const fn new() -> Self {
        ArrayStr { buf: [0; N], len: 0 }
    }

    /// A copy of `s`, or `None` if it is longer than `N` bytes.
    pub fn try_from_str(s: &str) -> Option<Self> {
        if s.len() > N {
            return None;
        }
        let mut a = Self::new();
        a.buf[..s.len()].copy_from_slice(s.as_bytes());
        a.len = s.len();
        Some(a)
    }

    /// A copy of as much of `s` as fits, cut at a character boundary, and
    /// whether it was cut.
    pub fn truncated(s: &str) -> (Self, bool) {
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let a = Self::try_from_str(&s[..end]).expect("prefix fits by construction");
        (a, end < s.len())
    }

    /// The contents.
    pub fn as_str(&self) -> &str {
        // Only ever filled from whole `&str`s cut at char boundaries.
        core::str::from_utf8(&self.buf[..self.len]).expect("ArrayStr holds UTF-8")
    }
}

impl<const N: usize> Default for ArrayStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ArrayStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for ArrayStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `test`/`bench` name.
pub const NAME_MAX: usize = 64;

/// A scenario name for `test` or `bench`.
pub type Name = ArrayStr<NAME_MAX>;

/// The parsed boot parameters. Start from [`BootParams::DEFAULT`] (or
/// `Default`) and [`apply`](BootParams::apply) each pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootParams {
    /// `gomaxprocs`: number of Ps; `None` means one per core.
    pub gomaxprocs: Option<u32>,
    /// `schedtrace`: period of the trace line in ms; 0 = off.
    pub schedtrace_ms: u32,
    /// `scheddetail`: detailed trace.
    pub scheddetail: bool,
    /// `schedrandom`: randomize `runnext` and batches (Go's race-mode
    /// scheduling).
    pub schedrandom: bool,
    /// `test`: scenario to run.
    pub test: Option<Name>,
    /// `bench`: benchmark to run.
    pub bench: Option<Name>,
    /// `heap`: a fixed kernel heap of this many bytes. `None` (the default):
    /// the heap starts at [`HEAP_INITIAL`] and grows while physical memory
    /// lasts.
    pub heap_bytes: Option<usize>,
    /// `forcepreemptns`: sysmon preempts a G running longer than this.
    pub forcepreemptns: u64,
    /// `hz`: timer/sysmon tick rate.
    pub hz: u32,
    /// `asyncpreemptoff`: disable asynchronous preemption.
    pub asyncpreemptoff: bool,
    /// `x2apic`: use x2APIC mode when the CPU has it (default true).
    pub x2apic: bool,
    /// `haltpoll`: poll the note before halting (`gmp_core::haltpoll`; default false).
    pub haltpoll: bool,
    /// `duration`: run time of a timed scenario, seconds.
    pub duration_s: u32,
    /// `skipap`: position in the ACPI MADT of an AP the boot core must not
    /// start (it is treated as an AP that never answered); 0 = none.
    pub skipap: u32,
    /// `trace`: 0 off, 1 stream (first `tracebuf` events), 2 flight recorder
    /// (last `tracebuf` events; written as `trace=flight`).
    pub trace: u8,
    /// `tracebuf`: tracer events per core.
    pub tracebuf: u32,
    /// `profile`: CPU profiler sampling rate in Hz; 0 = off.
    pub profile_hz: u32,
    /// `case`: the case of a parameterized test (see `gmp_core::ktest`).
    pub case: Option<Name>,
    /// `seed`: seeds every random generator of the scheduler instead of the
    /// TSC (what the test runner's `--seed` passes).
    pub seed: Option<u64>,
}

impl Default for BootParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What was wrong with a parameter (see [`ParamError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key is not in [`KNOWN`].
    UnknownKey,
    /// The value is not a decimal number.
    NotANumber,
    /// The value is not `0` or `1`.
    NotABool,
    /// The value is not a size (number with optional K/M/G suffix).
    NotASize,
    /// The value is not a valid `[a-z0-9_-]{1,64}` name.
    BadName,
    /// `trace` is not `0`, `1` or `flight`.
    NotATraceMode,
    /// The number is outside `min..=max` (in the unit of `unit`).
    OutOfRange {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
        /// How to print the bounds and what they mean.
        unit: Unit,
    },
}

/// The unit of an [`ErrorKind::OutOfRange`] bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Ps; the maximum is the number of cores.
    Cores,
    /// Milliseconds (0 = off).
    TraceMillis,
    /// Nanoseconds.
    Nanos,
    /// Ticks per second.
    Hertz,
    /// Seconds.
    Seconds,
    /// Bytes, printed with K/M/G suffixes.
    Bytes,
    /// A core's position in the ACPI MADT (0 = none).
    CorePosition,
    /// Tracer events per core.
    Events,
    /// Profiler samples per second (0 = off is also accepted).
    SampleHertz,
    /// A plain number.
    Plain,
}

/// A rejected boot parameter. It owns copies of the key and value (cut to
/// 32 and 64 bytes), so it outlives the strings it was made from. Its
/// `Display` is a complete, one-line message for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamError {
    key: ArrayStr<32>,
    key_cut: bool,
    value: ArrayStr<64>,
    value_cut: bool,
    kind: ErrorKind,
}

impl ParamError {
    fn new(key: &str, value: &str, kind: ErrorKind) -> Self {
        let (key, key_cut) = ArrayStr::truncated(key);
        let (value, value_cut) = ArrayStr::truncated(value);
        ParamError { key, key_cut, value, value_cut, kind }
    }

    /// The key as given (possibly cut).
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    /// The value as given (possibly cut).
    pub fn value(&self) -> &str {
        self.value.as_str()
    }

    /// What was wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// `fmt::Write` into an [`ArrayStr`] (what does not fit is dropped).
struct Writer<'a, const N: usize>(&'a mut ArrayStr<N>);

impl<const N: usize> fmt::Write for Writer<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let a = &mut *self.0;
        let n = s.len().min(N - a.len);
        a.buf[a.len..a.len + n].copy_from_slice(&s.as_bytes()[..n]);
        a.len += n;
        Ok(())
    }
}

/// Prints a byte count as `1G`, `32M`, `512K` or plain bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        match b {
            0 => write!(f, "0"),
            _ if b % GIB == 0 => write!(f, "{}G", b / GIB),
            _ if b % MIB == 0 => write!(f, "{}M", b / MIB),
            _ if b % KIB == 0 => write!(f, "{}K", b / KIB),
            _ => write!(f, "{b}"),
        }
    }
}

/// Prints a string with control characters escaped (`\n`, `\u{1}`), so
/// that a message about a bad key or value stays one readable line.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = Esc(self.key.as_str());
        let kcut = if self.key_cut { "..." } else { "" };
        let vcut = if self.value_cut { "..." } else { "" };
        let value = Esc(self.value.as_str());
        match self.kind {
            ErrorKind::UnknownKey => {
                write!(f, "unknown boot parameter \"{key}{kcut}\" (known: ")?;
                for (i, (k, _)) in KNOWN.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(k)?;
                }
                f.write_str(")")
            }
            ErrorKind::NotANumber => {
                write!(f, "{key}={value}{vcut}: not a number (expected decimal digits only)")
            }
            ErrorKind::NotABool => write!(f, "{key}={value}{vcut}: must be 0 or 1"),
            ErrorKind::NotATraceMode => write!(f, "{key}={value}{vcut}: must be 0 (off), 1 (stream) or flight (flight recorder)"),
            ErrorKind::NotASize => write!(
                f,
                "{key}={value}{vcut}: not a size (a number of bytes with an optional K, M or G suffix, e.g. 64M)"
            ),
            ErrorKind::BadName => write!(
                f,
                "{key}={value}{vcut}: must be a non-empty name of at most {NAME_MAX} characters from {}",
                if self.key.as_str() == "test" { "[a-z0-9_:*-]" } else { "[a-z0-9_-]" }
            ),
            ErrorKind::OutOfRange { min, max, unit } => {
                write!(f, "{key}={value}{vcut} is out of range: must be ")?;
                match unit {
                    Unit::Cores => write!(f, "{min}..={max} (the number of cores)"),
                    Unit::TraceMillis => write!(f, "{min}..={max} (milliseconds, 0 = off)"),
                    Unit::Nanos => write!(f, "{min}..={max} (nanoseconds)"),
                    Unit::Hertz => write!(f, "{min}..={max} (ticks per second)"),
                    Unit::Seconds => write!(f, "{min}..={max} (seconds)"),
                    Unit::Bytes => write!(f, "{}..={} (bytes)", Size(min), Size(max)),
                    Unit::CorePosition => {
                        write!(f, "{min}..={max} (a core's position in the ACPI MADT; 0 = none)")
                    }
                    Unit::Events => write!(f, "{min}..={max} (events per core)"),
                    Unit::SampleHertz => write!(f, "0 (off) or {min}..={max} (samples per second)"),
                    Unit::Plain => write!(f, "{min}..={max}"),
                }
            }
        }
    }
}

/// Why a number did not parse.
enum NumError {
    /// Empty or a non-digit.
    Syntax,
    /// All digits, but more than fits in a u64.
    TooBig,
}

fn parse_u64(s: &str) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let mut n: u64 = 0;
    let mut too_big = false;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(NumError::Syntax);
        }
        match n.checked_mul(10).and_then(|n| n.checked_add((b - b'0') as u64)) {
            Some(v) => n = v,
            None => too_big = true,
        }
    }
    if too_big {
        Err(NumError::TooBig)
    } else {
        Ok(n)
    }
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0')
}

impl BootParams {
    /// The defaults (what a kernel booted without parameters uses).
    pub const DEFAULT: BootParams = BootParams {
        gomaxprocs: None,
        schedtrace_ms: 0,
        scheddetail: false,
        schedrandom: false,
        test: None,
        bench: None,
        heap_bytes: None,
        forcepreemptns: 10_000_000,
        hz: 1000,
        asyncpreemptoff: false,
        x2apic: true,
        haltpoll: false,
        duration_s: 10,
        skipap: 0,
        trace: 0,
        tracebuf: 32768,
        profile_hz: 0,
        case: None,
        seed: None,
    };

    /// The number of Ps to create: `gomaxprocs` if given, else `ncpu`.
    pub fn gomaxprocs_or(&self, ncpu: u32) -> u32 {
        self.gomaxprocs.unwrap_or(ncpu)
    }

    /// Checks `skipap` against the number of cores the ACPI MADT lists
    /// (`found`, the boot core included): the skipped core must be an AP,
    /// `1..found`. Call it once the cores are known; `apply` can only check
    /// the syntax.
    pub fn check_skipap(&self, found: u32) -> Result<(), ParamError> {
        if self.skipap == 0 || self.skipap < found {
            return Ok(());
        }
        let mut value = ArrayStr::<64>::new();
        let mut w = Writer(&mut value);
        let _ = fmt::write(&mut w, format_args!("{}", self.skipap));
        Err(ParamError::new(
            "skipap",
            value.as_str(),
            ErrorKind::OutOfRange { min: 0, max: found.saturating_sub(1) as u64, unit: Unit::CorePosition },
        ))
    }

    /// Parses every pair in turn, starting from the defaults. Stops at the
    /// first error. Later pairs override earlier ones.
    pub fn from_pairs<'a, I>(pairs: I, ncpu: u32) -> Result<BootParams, ParamError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut p = BootParams::DEFAULT;
        for (k, v) in pairs {
            p.apply(k, v, ncpu)?;
        }
        Ok(p)
    }

    /// Validates one `key=value` pair and stores it. `ncpu` (the number of
    /// cores) bounds `gomaxprocs`. On error nothing is changed.
    pub fn apply(&mut self, key: &str, value: &str, ncpu: u32) -> Result<(), ParamError> {
        let key = trim(key);
        let value = trim(value);
        let err = |kind| ParamError::new(key, value, kind);
        // A number in min..=max, with the error kinds above.
        let ranged = |min: u64, max: u64, unit: Unit| -> Result<u64, ParamError> {
            let out_of_range = || err(ErrorKind::OutOfRange { min, max, unit });
            match parse_u64(value) {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(_) | Err(NumError::TooBig) => Err(out_of_range()),
                Err(NumError::Syntax) => Err(err(ErrorKind::NotANumber)),
            }
        };
        let flag = || match value {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(err(ErrorKind::NotABool)),
        };
        // `test` also takes `::` paths and `*` globs (the ktest framework).
        let name = |extra: &[u8]| {
            let ok = !value.is_empty()
                && value.len() <= NAME_MAX
                && value.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-') || extra.contains(&b));
            match ok.then(|| Name::try_from_str(value)).flatten() {
                Some(n) => Ok(n),
                None => Err(err(ErrorKind::BadName)),
            }
        };
        match key {
            "gomaxprocs" => {
                self.gomaxprocs = Some(ranged(1, ncpu as u64, Unit::Cores)? as u32);
            }
            "schedtrace" => {
                self.schedtrace_ms =
                    ranged(0, SCHEDTRACE_MAX_MS as u64, Unit::TraceMillis)? as u32;
            }
            "scheddetail" => self.scheddetail = flag()?,
            "schedrandom" => self.schedrandom = flag()?,
            "test" => self.test = Some(name(b":*")?),
            "bench" => self.bench = Some(name(b"")?),
            "case" => self.case = Some(name(b"")?),
            "seed" => {
                self.seed = Some(parse_u64(value).map_err(|e| match e {
                    NumError::Syntax => err(ErrorKind::NotANumber),
                    NumError::TooBig => err(ErrorKind::OutOfRange { min: 0, max: u64::MAX, unit: Unit::Plain }),
                })?)
            }
            "heap" => self.heap_bytes = Some(parse_heap(value).map_err(err)?),
            "forcepreemptns" => {
                self.forcepreemptns = ranged(FORCEPREEMPT_MIN_NS, FORCEPREEMPT_MAX_NS, Unit::Nanos)?;
            }
            "hz" => self.hz = ranged(HZ_MIN as u64, HZ_MAX as u64, Unit::Hertz)? as u32,
            "asyncpreemptoff" => self.asyncpreemptoff = flag()?,
            "x2apic" => self.x2apic = flag()?,
            "haltpoll" => self.haltpoll = flag()?,
            "duration" => self.duration_s = ranged(1, DURATION_MAX_S as u64, Unit::Seconds)? as u32,
            // The bound that matters (the number of cores found) is only
            // known after ACPI is read: see `check_skipap`.
            "skipap" => self.skipap = ranged(0, SKIPAP_MAX as u64, Unit::CorePosition)? as u32,
            "trace" => {
                self.trace = match value {
                    "0" => 0,
                    "1" => 1,
                    "flight" => 2,
                    _ => return Err(err(ErrorKind::NotATraceMode)),
                }
            }
            "tracebuf" => self.tracebuf = ranged(TRACEBUF_MIN as u64, TRACEBUF_MAX as u64, Unit::Events)? as u32,
            "profile" => {
                self.profile_hz = if value == "0" { 0 } else { ranged(HZ_MIN as u64, HZ_MAX as u64, Unit::SampleHertz)? as u32 };
            }
            _ => return Err(err(ErrorKind::UnknownKey)),
        }
        Ok(())
    }
}

/// `heap`: digits, then an optional `K`, `M` or `G` (either case, powers of
/// 1024), in `HEAP_MIN..=HEAP_MAX`.
fn parse_heap(value: &str) -> Result<usize, ErrorKind> {
    let (digits, mult) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], KIB),
        Some(b'm' | b'M') => (&value[..value.len() - 1], MIB),
        Some(b'g' | b'G') => (&value[..value.len() - 1], GIB),
        _ => (value, 1),
    };
    let out_of_range = ErrorKind::OutOfRange {
        min: HEAP_MIN as u64,
        max: HEAP_MAX as u64,
        unit: Unit::Bytes,
    };
    let n = match parse_u64(digits) {
        Ok(n) => n,
        Err(NumError::TooBig) => return Err(out_of_range),
        Err(NumError::Syntax) => return Err(ErrorKind::NotASize),
    };
    match n.checked_mul(mult) {
        Some(b) if (HEAP_MIN as u64..=HEAP_MAX as u64).contains(&b) => Ok(b as usize),
        _ => Err(out_of_range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(key: &str, value: &str) -> Result<BootParams, ParamError> {
        let mut p = BootParams::DEFAULT;
        p.apply(key, value, 4).map(|()| p)
    }

    fn msg(key: &str, value: &str) -> String {
        apply(key, value).expect_err("should be rejected").to_string()
    }

    #[test]
    fn trace_and_profile() {
        assert_eq!(apply("trace", "1").unwrap().trace, 1);
        assert_eq!(apply("trace", "flight").unwrap().trace, 2);
        assert_eq!(apply("trace", "0").unwrap().trace, 0);
        assert!(msg("trace", "yes").contains("must be 0 (off), 1 (stream) or flight"));
        assert_eq!(apply("tracebuf", "4096").unwrap().tracebuf, 4096);
        assert!(msg("tracebuf", "10").contains("1024..=4194304 (events per core)"));
        assert_eq!(apply("profile", "0").unwrap().profile_hz, 0);
        assert_eq!(apply("profile", "997").unwrap().profile_hz, 997);
        assert!(msg("profile", "5").contains("must be 0 (off) or 10..=10000 (samples per second)"));
        assert!(msg("profile", "20000").contains("out of range"));
    }

    #[test]
    fn defaults() {
        let p = BootParams::default();
        assert_eq!(p.gomaxprocs, None);
        assert_eq!(p.gomaxprocs_or(4), 4);
        assert_eq!(p.schedtrace_ms, 0);
        assert!(!p.scheddetail && !p.schedrandom);
        assert_eq!((p.test, p.bench), (None, None));
        assert_eq!(p.heap_bytes, None);
        assert_eq!(p.forcepreemptns, 10_000_000);
        assert_eq!(p.hz, 1000);
    }

    #[test]
    fn known_lists_every_key_once_and_each_is_accepted() {
        let sample = |k: &str| match k {
            "test" | "bench" | "case" => "x",
            "heap" => "2M",
            "forcepreemptns" => "100000",
            "hz" => "100",
            "tracebuf" => "4096",
            "profile" => "100",
            _ => "1",
        };
        for (i, (k, help)) in KNOWN.iter().enumerate() {
            assert!(!help.is_empty());
            assert!(KNOWN[..i].iter().all(|(k2, _)| k2 != k), "{k} listed twice");
            apply(k, sample(k)).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        assert_eq!(KNOWN.len(), 19);
    }

    #[test]
    fn unknown_key() {
        let e = apply("foo", "1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        assert_eq!(
            e.to_string(),
            "unknown boot parameter \"foo\" (known: gomaxprocs, schedtrace, scheddetail, \
             schedrandom, test, bench, heap, forcepreemptns, hz, asyncpreemptoff, seed, duration, skipap, trace, tracebuf, profile, case, x2apic, haltpoll)"
        );
        // Keys are case-sensitive.
        assert_eq!(apply("GOMAXPROCS", "1").unwrap_err().kind(), ErrorKind::UnknownKey);
        assert_eq!(apply("", "1").unwrap_err().kind(), ErrorKind::UnknownKey);
    }

    #[test]
    fn gomaxprocs() {
        for n in 1..=4 {
            assert_eq!(apply("gomaxprocs", &n.to_string()).unwrap().gomaxprocs, Some(n));
        }
        assert_eq!(apply("gomaxprocs", "2").unwrap().gomaxprocs_or(4), 2);
        assert_eq!(
            msg("gomaxprocs", "0"),
            "gomaxprocs=0 is out of range: must be 1..=4 (the number of cores)"
        );
        assert_eq!(
            msg("gomaxprocs", "5"),
            "gomaxprocs=5 is out of range: must be 1..=4 (the number of cores)"
        );
        assert_eq!(
            msg("gomaxprocs", "99999999999999999999999"),
            "gomaxprocs=99999999999999999999999 is out of range: must be 1..=4 (the number of cores)"
        );
        assert_eq!(msg("gomaxprocs", "two"), "gomaxprocs=two: not a number (expected decimal digits only)");
        for bad in ["", "-1", "+2", "0x2", "1.5", "2 2"] {
            assert_eq!(apply("gomaxprocs", bad).unwrap_err().kind(), ErrorKind::NotANumber, "{bad:?}");
        }
        // The bound follows ncpu.
        let mut p = BootParams::DEFAULT;
        assert!(p.apply("gomaxprocs", "16", 16).is_ok());
        assert!(p.apply("gomaxprocs", "2", 1).is_err());
        assert_eq!(p.gomaxprocs, Some(16), "a rejected value changes nothing");
    }

    #[test]
    fn schedtrace() {
        assert_eq!(apply("schedtrace", "0").unwrap().schedtrace_ms, 0);
        assert_eq!(apply("schedtrace", "1000").unwrap().schedtrace_ms, 1000);
        assert_eq!(apply("schedtrace", "60000").unwrap().schedtrace_ms, 60000);
        assert_eq!(msg("schedtrace", "abc"), "schedtrace=abc: not a number (expected decimal digits only)");
        assert_eq!(
            msg("schedtrace", "60001"),
            "schedtrace=60001 is out of range: must be 0..=60000 (milliseconds, 0 = off)"
        );
        assert_eq!(apply("schedtrace", "10ms").unwrap_err().kind(), ErrorKind::NotANumber);
    }

    #[test]
    fn flags() {
        for key in ["scheddetail", "schedrandom"] {
            let on = apply(key, "1").unwrap();
            let off = apply(key, "0").unwrap();
            let get = |p: &BootParams| if key == "scheddetail" { p.scheddetail } else { p.schedrandom };
            assert!(get(&on) && !get(&off));
            for bad in ["2", "true", "yes", "", "01", "-1"] {
                let e = apply(key, bad).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotABool, "{key}={bad}");
            }
            assert_eq!(msg(key, "2"), format!("{key}=2: must be 0 or 1"));
        }
    }

    #[test]
    fn haltpoll_flag() {
        assert!(!BootParams::DEFAULT.haltpoll, "the reference behaviour is the default");
        assert!(apply("haltpoll", "1").unwrap().haltpoll);
        assert!(!apply("haltpoll", "0").unwrap().haltpoll);
        assert_eq!(apply("haltpoll", "yes").unwrap_err().kind(), ErrorKind::NotABool);
        assert_eq!(msg("haltpoll", "2"), "haltpoll=2: must be 0 or 1");
    }

    #[test]
    fn names() {
        for key in ["test", "bench", "case"] {
            for good in ["a", "chan-pingpong", "steal_4", "0", &"x".repeat(64)] {
                let p = apply(key, good).unwrap_or_else(|e| panic!("{e}"));
                let got = match key {
                    "test" => p.test,
                    "bench" => p.bench,
                    _ => p.case,
                };
                assert_eq!(got.unwrap().as_str(), good);
            }
            for bad in ["", "Foo", "a b", "a/b", "é", "a.b", &"x".repeat(65)] {
                assert_eq!(apply(key, bad).unwrap_err().kind(), ErrorKind::BadName, "{key}={bad:?}");
            }
            let chars = if key == "test" { "[a-z0-9_:*-]" } else { "[a-z0-9_-]" };
            assert_eq!(
                msg(key, "Foo!"),
                format!("{key}=Foo!: must be a non-empty name of at most 64 characters from {chars}")
            );
        }
        // Test names are paths and globs of the ktest framework.
        assert_eq!(apply("test", "chan::*").unwrap().test.unwrap().as_str(), "chan::*");
        assert_eq!(apply("bench", "chan::x").unwrap_err().kind(), ErrorKind::BadName);
        assert_eq!(apply("case", "a:b").unwrap_err().kind(), ErrorKind::BadName);
        assert_eq!(
            msg("test", "A"),
            "test=A: must be a non-empty name of at most 64 characters from [a-z0-9_:*-]"
        );
        assert_eq!(apply("seed", "18446744073709551615").unwrap().seed, Some(u64::MAX));
        assert_eq!(apply("seed", "x").unwrap_err().kind(), ErrorKind::NotANumber);
    }

    #[test]
    fn heap() {
        let h = |v: &str| apply("heap", v).map(|p| p.heap_bytes.unwrap());
        assert_eq!(h("1M").unwrap(), 1 << 20);
        assert_eq!(h("1m").unwrap(), 1 << 20);
        assert_eq!(h("64M").unwrap(), 64 << 20);
        assert_eq!(h("1G").unwrap(), 1 << 30);
        assert_eq!(h("1024K").unwrap(), 1 << 20);
        assert_eq!(h("1048576").unwrap(), 1 << 20);
        assert_eq!(h("2097152k").unwrap_err().kind(), h("2G").unwrap_err().kind());
        for bad in ["1023K", "1048575", "0", "0M", "2G", "1025M", "99999999999999999999G", "18014398509481984K"] {
            assert!(
                matches!(h(bad).unwrap_err().kind(), ErrorKind::OutOfRange { unit: Unit::Bytes, .. }),
                "{bad}"
            );
        }
        for bad in ["", "M", "12Q", "1.5M", "-1M", "1MB", "M1", " 1 M"] {
            assert_eq!(h(bad).unwrap_err().kind(), ErrorKind::NotASize, "{bad:?}");
        }
        assert_eq!(msg("heap", "512K"), "heap=512K is out of range: must be 1M..=1G (bytes)");
        assert_eq!(
            msg("heap", "12Q"),
            "heap=12Q: not a size (a number of bytes with an optional K, M or G suffix, e.g. 64M)"
        );
    }

    #[test]
    fn forcepreemptns() {
        let f = |v: &str| apply("forcepreemptns", v).map(|p| p.forcepreemptns);
        assert_eq!(f("100000").unwrap(), 100_000);
        assert_eq!(f("10000000000").unwrap(), 10_000_000_000);
        assert_eq!(f("20000000").unwrap(), 20_000_000);
        assert_eq!(
            msg("forcepreemptns", "99999"),
            "forcepreemptns=99999 is out of range: must be 100000..=10000000000 (nanoseconds)"
        );
        assert!(f("10000000001").is_err());
        assert!(f("0").is_err());
        assert_eq!(f("10ms").unwrap_err().kind(), ErrorKind::NotANumber);
    }

    #[test]
    fn hz() {
        let f = |v: &str| apply("hz", v).map(|p| p.hz);
        assert_eq!(f("10").unwrap(), 10);
        assert_eq!(f("10000").unwrap(), 10000);
        assert_eq!(f("250").unwrap(), 250);
        assert_eq!(msg("hz", "9"), "hz=9 is out of range: must be 10..=10000 (ticks per second)");
        assert!(f("10001").is_err());
        assert_eq!(f("1k").unwrap_err().kind(), ErrorKind::NotANumber);
    }

    #[test]
    fn skipap() {
        let f = |v: &str| apply("skipap", v).map(|p| p.skipap);
        assert_eq!(BootParams::DEFAULT.skipap, 0, "every core is started by default");
        assert_eq!(f("0").unwrap(), 0);
        assert_eq!(f("1").unwrap(), 1);
        assert_eq!(f("1023").unwrap(), 1023);
        assert_eq!(
            msg("skipap", "1024"),
            "skipap=1024 is out of range: must be 0..=1023 (a core's position in the ACPI MADT; 0 = none)"
        );
        for bad in ["", "-1", "one", "1 2", "0x1"] {
            assert_eq!(f(bad).unwrap_err().kind(), ErrorKind::NotANumber, "{bad:?}");
        }
        // Against the cores found: only an AP (1..found) can be skipped.
        let p = apply("skipap", "3").unwrap();
        assert!(p.check_skipap(4).is_ok());
        assert!(p.check_skipap(200).is_ok());
        let e = p.check_skipap(3).unwrap_err();
        assert_eq!((e.key(), e.value()), ("skipap", "3"));
        assert_eq!(
            e.to_string(),
            "skipap=3 is out of range: must be 0..=2 (a core's position in the ACPI MADT; 0 = none)"
        );
        assert!(apply("skipap", "1").unwrap().check_skipap(1).is_err(), "one core: no AP to skip");
        assert!(BootParams::DEFAULT.check_skipap(1).is_ok(), "0 is always fine");
        let big = apply("skipap", "254").unwrap().check_skipap(0).unwrap_err();
        assert_eq!(big.value(), "254");
    }

    #[test]
    fn max_params_fits_every_key() {
        // Every key once must fit; duplicates are the runner's to refuse.
        assert!(KNOWN.len() <= MAX_PARAMS);
        assert!(MAX_PARAMS < 32, "QEMU's fw_cfg has 32 file slots and uses some itself");
    }

    #[test]
    fn whitespace_and_nul_are_trimmed() {
        assert_eq!(apply(" hz\n", " 100\n\0").unwrap().hz, 100);
        assert_eq!(apply("test", "smoke\n").unwrap().test.unwrap().as_str(), "smoke");
    }

    #[test]
    fn from_pairs_applies_in_order_and_stops_at_first_error() {
        let p = BootParams::from_pairs(
            [("gomaxprocs", "2"), ("schedtrace", "100"), ("scheddetail", "1"), ("gomaxprocs", "3")],
            4,
        )
        .unwrap();
        assert_eq!(p.gomaxprocs, Some(3));
        assert_eq!(p.schedtrace_ms, 100);
        assert!(p.scheddetail);
        let e = BootParams::from_pairs([("hz", "100"), ("bogus", "1"), ("hz", "x")], 4).unwrap_err();
        assert_eq!(e.key(), "bogus");
        assert_eq!(e.value(), "1");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "9".repeat(100);
        let m = msg("hz", &long);
        assert!(m.starts_with(&format!("hz={}... is out of range", "9".repeat(64))), "{m}");
        let long_key = "k".repeat(40);
        let m = msg(&long_key, "1");
        assert!(m.starts_with(&format!("unknown boot parameter \"{}...\"", "k".repeat(32))), "{m}");
        // Cutting respects UTF-8 boundaries.
        let (s, cut) = ArrayStr::<4>::truncated("aéé");
        assert!(cut);
        assert_eq!(s.as_str(), "aé");
    }

    #[test]
    fn array_str() {
        assert_eq!(ArrayStr::<3>::try_from_str("abcd"), None);
        let s = ArrayStr::<3>::try_from_str("abc").unwrap();
        assert_eq!(s.as_str(), "abc");
        assert_eq!(format!("{s} {s:?}"), "abc \"abc\"");
        assert_eq!(ArrayStr::<3>::new().as_str(), "");
    }

    #[test]
    fn seed_and_duration() {
        let p = apply("seed", "18446744073709551615").unwrap();
        assert_eq!(p.seed, Some(u64::MAX));
        assert_eq!(apply("seed", "0").unwrap().seed, Some(0));
        assert!(msg("seed", "18446744073709551616").contains("out of range"));
        assert!(msg("seed", "-1").contains("not a number"));
        assert_eq!(apply("duration", "1800").unwrap().duration_s, 1800);
        assert_eq!(msg("duration", "0"), "duration=0 is out of range: must be 1..=86400 (seconds)");
        assert!(msg("duration", "86401").contains("1..=86400 (seconds)"));
    }

    // Fuzzing the parser (issue 8): any bytes at all, as fw_cfg could hand
    // them over, end in a value or in a one-line error naming the key;
    // never a panic. (A panic fails the proptest with the input.)
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(KNOWN.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()),
                ".{0,40}",
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9]{0,25}",
                "[0-9]{1,4}[kKmMgG]?",
                "[a-z0-9_-]{0,70}",
                "\\PC{0,80}",
                proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn any_input_is_a_value_or_a_clear_error(k in key(), v in value(), ncpu in 1u32..=64) {
                let mut p = BootParams::DEFAULT;
                let before = p;
                match p.apply(&k, &v, ncpu) {
                    Ok(()) => {
                        if let Some(g) = p.gomaxprocs {
                            prop_assert!((1..=ncpu).contains(&g));
                        }
                        prop_assert!(p.hz >= HZ_MIN && p.hz <= HZ_MAX);
                        prop_assert!(p.heap_bytes.is_none_or(|b| (HEAP_MIN..=HEAP_MAX).contains(&b)));
                        prop_assert!(p.duration_s >= 1 && p.duration_s <= DURATION_MAX_S);
                    }
                    Err(e) => {
                        // Nothing changed, and the message is one line that
                        // names what was given.
                        prop_assert_eq!(p, before);
                        let m = e.to_string();
                        prop_assert!(!m.is_empty() && !m.contains('\n'), "{:?}", m);
                        let kt = k.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
                        let shown: String = Esc(kt).to_string().chars().take(8).collect();
                        prop_assert!(m.contains(&shown), "{:?} does not name {:?}", m, kt);
                    }
                }
            }

            #[test]
            fn many_pairs_never_panic(pairs in proptest::collection::vec((key(), value()), 0..40)) {
                let _ = BootParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), 8);
            }
        }
    }
}
