//! What each lab is: its graded tests, the files the grader protects, and what a starter
//! leaves out. Adding a lab is a file in `spec/` and an entry in [`LABS`] (and regions in the source).

/// How a graded test is run.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A `#[test]` of `gmp-core`'s unit tests (`cargo test -p gmp-core --lib`), by full path.
    Host(&'static str),
    /// A loom model of `gmp-core` (the same, under `--cfg loom`, release), by full path.
    Loom(&'static str),
    /// A `#[ktest]` of the testkernel booted in QEMU with `seed=NONCE`; the host recomputes
    /// the expected output line from the nonce with `expect`.
    Qemu { test: &'static str, smp: u32, expect: fn(u64) -> String },
    /// The same, booted with extra boot parameters (as the ktest's `params`, e.g.
    /// `gomaxprocs=1 asyncpreemptoff=1`).
    QemuParams { test: &'static str, smp: u32, params: &'static str, expect: fn(u64) -> String },
    /// A ratio against the reference kernel (lab 8): each run boots the `#[ktest]` twice with
    /// the same nonce, with the `reference` boot parameters and with the student's `params`;
    /// both must print the `expect` line, and the line starting with `counters` gives their
    /// [`Counters`]. `score` turns every run's pair into the fraction of the points earned
    /// (e.g. from the median of the runs, to ride out emulation noise). Graded once over all
    /// runs, not once per run; tests with the same boots share them.
    Ratio {
        test: &'static str,
        smp: u32,
        reference: &'static str,
        params: &'static str,
        expect: fn(u64) -> String,
        counters: &'static str,
        score: fn(&[RatioRun]) -> (f64, String),
    },
}

/// The `NAME VALUE` pairs of a counters line (`lab8: counters haltpoll=1 wakeups 10 ipis 3`:
/// after the prefix, words `NAME VALUE`, or `NAME=VALUE`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters(pub Vec<(String, u64)>);

impl Counters {
    /// The counters of the first line of `text` that starts with `prefix` (after an optional
    /// `[...] ` console tag).
    pub fn find(text: &str, prefix: &str) -> Option<Counters> {
        let line = text.lines().find_map(|l| {
            let l = l.trim_end();
            let l = if l.starts_with('[') { l.split_once("] ").map_or(l, |x| x.1) } else { l };
            l.strip_prefix(prefix)
        })?;
        let mut out = Vec::new();
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if let Some((k, v)) = w.split_once('=') {
                out.push((k.to_string(), v.parse().ok()?));
            } else {
                out.push((w.to_string(), words.next()?.parse().ok()?));
            }
        }
        Some(Counters(out))
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| k == name).map(|p| p.1)
    }
}

/// One run of a [`Kind::Ratio`] test: the reference boot's counters and the student's, each
/// `None` if that boot failed or did not print the expected line.
#[derive(Clone, Debug, Default)]
pub struct RatioRun {
    pub reference: Option<Counters>,
    pub student: Option<Counters>,
}

/// The median of `v` (None if empty); `v` is sorted in place.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

impl Kind {
    /// A QEMU test's (test, smp, boot parameters, expected line); None for host and loom tests.
    pub fn qemu(&self) -> Option<(&'static str, u32, &'static str, fn(u64) -> String)> {
        match *self {
            Kind::Qemu { test, smp, expect } => Some((test, smp, "", expect)),
            Kind::QemuParams { test, smp, params, expect } => Some((test, smp, params, expect)),
            _ => None,
        }
    }

    /// Any test that boots QEMU (a [`Kind::Ratio`] too): (test, smp, the student's boot
    /// parameters). None for host and loom tests.
    pub fn boots(&self) -> Option<(&'static str, u32, &'static str)> {
        match *self {
            Kind::Ratio { test, smp, params, .. } => Some((test, smp, params)),
            _ => self.qemu().map(|(t, s, p, _)| (t, s, p)),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Test {
    pub title: &'static str,
    pub kind: Kind,
    pub points: u32,
}

pub struct Lab {
    pub number: u32,
    pub title: &'static str,
    pub tests: &'static [Test],
    /// Runs of each QEMU test (each run a fresh nonce).
    pub qemu_runs: u32,
    /// The other labs whose regions this lab's host and loom tests run (the run queue labs
    /// share `runq.rs`): on their starters this lab cannot score full marks, so `check` does
    /// not expect it to. Every other lab's starter must leave this lab at full marks.
    pub uses: &'static [u32],
    /// Files whose hash the starter's manifest records and the grader checks.
    pub protected: &'static [&'static str],
}

impl Lab {
    pub fn name(&self) -> String {
        format!("lab{}", self.number)
    }
    pub fn max(&self) -> u32 {
        self.max_with_runs(self.qemu_runs)
    }
    /// The full score when each QEMU test runs `runs` times (`--runs`). A ratio test is graded
    /// once over all its runs.
    pub fn max_with_runs(&self, runs: u32) -> u32 {
        self.tests.iter().map(|t| if t.kind.qemu().is_some() { t.points * runs } else { t.points }).sum()
    }
}

/// Never copied into a starter: the shipped mutants, and the CI check that uses them.
/// (Reference solutions are not files: they are the regions of the full tree.)
pub fn instructor_only(path: &str) -> bool {
    let p: Vec<&str> = path.split('/').collect();
    (p.len() >= 3 && p[0] == "labs" && p[2] == "mutants") || path == "tests/labs.rs"
}

/// The grader's own sources: protected in every lab.
pub const GRADER: &[&str] = &[
    "boot/src/lab/main.rs",
    "boot/src/lab/grade.rs",
    "boot/src/lab/regions.rs",
    "boot/src/lab/spec.rs",
    "run-qemu.sh",
    // `mix64`: the QEMU tests draw their inputs with it, and the grader recomputes them.
    "kernel/core/src/rand.rs",
];

// ---- the labs: one file each in `spec/`, listed here in order --------------------------
//
// A lab's file defines `pub const LAB: Lab` and lists itself among its protected files.

mod lab1;
mod lab2;
mod lab3;
mod lab4;
mod lab5;
mod lab6;
mod lab7;
mod lab8;

pub static LABS: &[Lab] = &[
    lab1::LAB,
    lab2::LAB,
    lab3::LAB,
    lab4::LAB,
    lab5::LAB,
    lab6::LAB,
    lab7::LAB,
    lab8::LAB,
];

pub fn find(name: &str) -> Option<&'static Lab> {
    let n: u32 = name.strip_prefix("lab").unwrap_or(name).parse().ok()?;
    LABS.iter().find(|l| l.number == n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_lab_is_worth_100() {
        for l in super::LABS {
            assert_eq!(l.max(), 100, "{}", l.name());
        }
    }

    #[test]
    fn uses_names_other_labs() {
        for l in super::LABS {
            for &u in l.uses {
                assert!(u != l.number && super::LABS.iter().any(|o| o.number == u), "{}: uses {u}", l.name());
            }
        }
    }

    #[test]
    fn counters_lines() {
        use super::Counters;
        let text = "boot\n[cpu1] lab8: counters haltpoll=1 wakeups 10 ipis 3 halts 4\nlab8: counters wakeups 99\n";
        let c = Counters::find(text, "lab8: counters ").unwrap();
        assert_eq!((c.get("haltpoll"), c.get("wakeups"), c.get("ipis"), c.get("halts")), (Some(1), Some(10), Some(3), Some(4)));
        assert_eq!(c.get("nope"), None);
        assert!(Counters::find("lab8: counters wakeups x\n", "lab8: counters ").is_none());
        assert!(Counters::find("nothing\n", "lab8: counters ").is_none());
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(&mut [4.0, 1.0]), Some(2.5));
        assert_eq!(super::median(&mut []), None);
    }

    #[test]
    fn instructor_only_paths() {
        assert!(super::instructor_only("labs/lab1/mutants/get-no-cas.patch"));
        assert!(super::instructor_only("tests/labs.rs"));
        assert!(!super::instructor_only("labs/lab1/README.md"));
    }
}
