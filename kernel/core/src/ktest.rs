//! The metadata of a kernel test (`#[ktest]`), as plain data that both the
//! kernel and the host runner read.
//!
//! Every `#[ktest]` function gets one entry in the kernel ELF's linker
//! section [`SECTION`]: [`META_LEN`] bytes of metadata text (NUL-padded),
//! then the function pointer (8 bytes). The host lists the tests by reading
//! that section from the ELF file, without booting it; the kernel walks the
//! same entries to find the test named by the `test=` boot parameter.
//!
//! The text is one `key:value` per line (`\n`), the first line [`MAGIC`]:
//!
//! ```text
//! ktest v1
//! module:testkernel::sched      (module_path!(); the crate name is dropped from the test name)
//! fn:spawn_storm
//! file:src/bin/testkernel/sched.rs
//! line:120
//! smp:1,2,4                     (core counts, the trial matrix)
//! also:4 schedrandom=1          (an extra trial: core count, then boot parameters; repeatable)
//! timeout:90                    (seconds, per trial)
//! params:gomaxprocs=1           (boot parameters, space-separated key=value words)
//! expect:pass | panic | fatal   (the expected outcome)
//! expect_text:send on closed    (text the panic message / fatal report must contain)
//! output:TEXT or /REGEX/        (in some serial line; `{smp}` = the core count; repeatable)
//! tags:slow,timing
//! min_cpus:2                    (trials with fewer cores are skipped)
//! skip_params:schedrandom=1     (skipped when the trial's boot parameters contain this word)
//! case:NAME PARAMS...           (one case of a parameterized test; repeatable)
//! mem:64                        (guest memory in MiB)
//! exclusive:1                   (no other trial runs meanwhile: timing-sensitive)
//! smp_only:1                    (holds only at the `smp` counts: `--smp` skips the others)
//! uefi:1                        (boot through UEFI)
//! ```
//!
//! Values never contain a newline (the macro checks). Unknown keys are
//! ignored, so that an older runner can list a newer kernel's tests.

/// Name of the linker section that holds the entries (a C identifier, so
/// that the linker defines `__start_`/`__stop_` symbols for it).
pub const SECTION: &str = "linkme_KTESTS";
/// Bytes of metadata text per entry.
pub const META_LEN: usize = 1016;
/// Bytes per entry: the text, then the function pointer.
pub const ENTRY_LEN: usize = META_LEN + 8;
/// First line of every entry's text.
pub const MAGIC: &str = "ktest v1";

/// `text` as a NUL-padded [`META_LEN`] array; a compile-time error if it
/// does not fit (the `#[ktest]` macro calls this in a `static` initialiser).
pub const fn meta_bytes(text: &str) -> [u8; META_LEN] {
    let b = text.as_bytes();
    assert!(b.len() < META_LEN, "#[ktest] metadata is too long (more than 1015 bytes): shorten the settings");
    let mut out = [0u8; META_LEN];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Expected outcome of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// It returns (the kernel exits with success).
    Pass,
    /// It panics with a message containing `expect_text` (`should_panic`).
    Panic,
    /// It ends in a fatal error whose report contains `expect_text`
    /// (a deadlock report, a stack overflow, a rejected boot parameter...).
    Fatal,
}

/// A view of one entry's metadata text.
#[derive(Clone, Copy, Debug)]
pub struct Meta<'a> {
    text: &'a str,
}

impl<'a> Meta<'a> {
    /// Parses the text of an entry (up to the first NUL). `None` if it does
    /// not start with [`MAGIC`] or is not UTF-8.
    pub fn parse(bytes: &'a [u8]) -> Option<Meta<'a>> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = core::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = text.split('\n');
        if lines.next()? != MAGIC {
            return None;
        }
        Some(Meta { text })
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.text.split('\n').skip(1).filter_map(move |l| {
            let (k, v) = l.split_once(':')?;
            (k == key).then_some(v)
        })
    }

    /// The first value of `key`.
    pub fn get(&self, key: &'a str) -> Option<&'a str> {
        self.all(key).next()
    }

    /// The module path without the crate name: `testkernel::chan` -> `chan`.
    pub fn module(&self) -> &'a str {
        let m = self.get("module").unwrap_or("");
        match m.split_once("::") {
            Some((_, rest)) => rest,
            None => "",
        }
    }

    /// The function's name.
    pub fn func(&self) -> &'a str {
        self.get("fn").unwrap_or("")
    }

    /// The suite: the first module below the crate (`chan` for
    /// `chan::sync_mutex`), or `main` for a test at the crate's top level.
    pub fn suite(&self) -> &'a str {
        match self.module().split("::").next() {
            Some(s) if !s.is_empty() => s,
            _ => "main",
        }
    }

    /// Whether `name` (a test name such as `chan::sync_mutex`, or a glob
    /// such as `chan::*`) names this test.
    pub fn matches(&self, pattern: &str) -> bool {
        let (m, f) = (self.module(), self.func());
        // The full name is MODULE::FN (or FN at the top level); compare
        // piecewise to need no allocation.
        if m.is_empty() {
            glob(pattern, f)
        } else {
            glob_parts(pattern.as_bytes(), &[m.as_bytes(), b"::", f.as_bytes()])
        }
    }

    /// The expected outcome.
    pub fn expect(&self) -> Expect {
        match self.get("expect") {
            Some("panic") => Expect::Panic,
            Some("fatal") => Expect::Fatal,
            _ => Expect::Pass,
        }
    }

    /// The raw text.
    pub fn text(&self) -> &'a str {
        self.text
    }
}

/// Shell-style wildcard match: `*` any run of characters, `?` one
/// character, anything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    glob_parts(pattern.as_bytes(), &[name.as_bytes()])
}

/// [`glob`] against the concatenation of `parts`.
fn glob_parts(p: &[u8], parts: &[&[u8]]) -> bool {
    let total: usize = parts.iter().map(|s| s.len()).sum();
    let at = |i: usize| -> u8 {
        let mut i = i;
        for s in parts {
            if i < s.len() {
                return s[i];
            }
            i -= s.len();
        }
        0
    };
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < total {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && p[pi] == at(ni))) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ktest v1\nmodule:testkernel::chan\nfn:sync_mutex\nsmp:1,2,4\nalso:4 schedrandom=1\nalso:8 x=1\nexpect:panic\nexpect_text:a: b\n";

    #[test]
    fn parse_and_fields() {
        let bytes = meta_bytes(TEXT);
        let m = Meta::parse(&bytes).unwrap();
        assert_eq!(m.module(), "chan");
        assert_eq!(m.func(), "sync_mutex");
        assert_eq!(m.suite(), "chan");
        assert_eq!(m.get("smp"), Some("1,2,4"));
        assert_eq!(m.all("also").collect::<Vec<_>>(), ["4 schedrandom=1", "8 x=1"]);
        assert_eq!(m.expect(), Expect::Panic);
        assert_eq!(m.get("expect_text"), Some("a: b"), "only the first colon splits");
        assert_eq!(m.get("nothing"), None);
        assert!(Meta::parse(b"ktest v2\nfn:x").is_none());
        assert!(Meta::parse(&[0xff, 0]).is_none());
    }

    #[test]
    fn top_level_test() {
        let m = Meta::parse(b"ktest v1\nmodule:mykernel\nfn:smoke\0\0").unwrap();
        assert_eq!((m.module(), m.func(), m.suite()), ("", "smoke", "main"));
        assert!(m.matches("smoke") && m.matches("sm*") && !m.matches("main::smoke"));
    }

    #[test]
    fn matching() {
        let bytes = meta_bytes(TEXT);
        let m = Meta::parse(&bytes).unwrap();
        for yes in ["chan::sync_mutex", "chan::*", "*", "*mutex", "chan::sync_?utex", "*::*"] {
            assert!(m.matches(yes), "{yes}");
        }
        for no in ["chan::sync", "sync_mutex", "chan::*y", "", "chan::sync_mutex2"] {
            assert!(!m.matches(no), "{no}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("**", ""));
        assert!(!glob("?", ""));
        assert!(glob("*ab", "aab"));
    }

    #[test]
    fn padding() {
        let b = meta_bytes("ktest v1\nfn:x");
        assert_eq!(b.len(), META_LEN);
        assert!(b[13..].iter().all(|&c| c == 0));
    }
}
