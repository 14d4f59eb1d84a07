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
    /// The full score when each QEMU test runs `runs` times (`--runs`).
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

pub static LABS: &[Lab] = &[
    lab1::LAB,
    lab2::LAB,
    lab3::LAB,
    lab4::LAB,
    lab5::LAB,
    lab6::LAB,
    lab7::LAB,
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
    fn instructor_only_paths() {
        assert!(super::instructor_only("labs/lab1/mutants/get-no-cas.patch"));
        assert!(super::instructor_only("tests/labs.rs"));
        assert!(!super::instructor_only("labs/lab1/README.md"));
    }
}
