//! Listing the tests of a kernel ELF without booting it: read the
//! `linkme_KTESTS` section (one fixed-size entry per `#[ktest]`, see
//! `gmp_core::ktest`) with the `object` crate.

use std::path::{Path, PathBuf};

use gmp_core::ktest::{Expect, Meta, ENTRY_LEN, META_LEN, SECTION};
use object::{Object, ObjectSection};

use crate::Error;

/// One declared test, as the ELF describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestInfo {
    /// Kernel binary (`testkernel`, an example's name, or the ELF's file name).
    pub bin: String,
    /// The ELF it came from.
    pub elf: PathBuf,
    /// `module::function` without the crate name (or `function` at the top level).
    pub name: String,
    /// The first module below the crate (`main` for top-level tests).
    pub suite: String,
    pub file: String,
    pub line: u32,
    /// Core counts (the matrix); the runner's `--smp` replaces it.
    pub smp: Vec<u32>,
    /// Extra trials: (cores, boot parameters).
    pub also: Vec<(u32, Vec<String>)>,
    /// Seconds per trial, if declared.
    pub timeout: Option<u64>,
    /// Boot parameters of every trial (`key=value`).
    pub params: Vec<String>,
    pub expect: Expect,
    /// Text the panic message / fatal report must contain.
    pub expect_text: String,
    /// Text some serial line must contain, or `/regex/` it must match (`{smp}` = the trial's cores).
    pub output: Vec<String>,
    pub tags: Vec<String>,
    /// Trials with fewer cores are skipped.
    pub min_cpus: u32,
    /// A trial whose parameters contain one of these words is skipped.
    pub skip_params: Vec<String>,
    /// Cases of a parameterized test: (name, boot parameters).
    pub cases: Vec<(String, Vec<String>)>,
    pub mem: Option<u32>,
    pub exclusive: bool,
    /// The test holds only at its own core counts, those of its matrix and of its `also` trials
    /// (it checks a count-specific outcome): a `--smp` list runs it at those of its counts that
    /// the list names and skips it at the others, instead of booting it where it cannot pass.
    pub smp_only: bool,
    pub uefi: bool,
}

/// The matrix when a test declares none.
pub const DEFAULT_SMP: &[u32] = &[1, 2, 4];

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

impl TestInfo {
    /// The settings of one entry's metadata text.
    pub fn from_meta(m: &Meta, bin: &str, elf: &Path) -> Result<TestInfo, Error> {
        let module = m.module();
        let name = if module.is_empty() { m.func().to_string() } else { format!("{module}::{}", m.func()) };
        let bad = |what: &str, v: &str| Error(format!("{}: test {name}: bad {what} `{v}` in the ktest section", elf.display()));
        let num = |k: &str| -> Result<Option<u64>, Error> {
            match m.get(k) {
                Some(v) => v.parse().map(Some).map_err(|_| bad(k, v)),
                None => Ok(None),
            }
        };
        let smp = match m.get("smp") {
            Some(v) => v.split(',').map(|c| c.parse::<u32>().map_err(|_| bad("smp", v))).collect::<Result<Vec<_>, _>>()?,
            None => DEFAULT_SMP.to_vec(),
        };
        let mut also = Vec::new();
        for v in m.all("also") {
            let mut w = v.split_whitespace();
            let c = w.next().and_then(|c| c.parse().ok()).ok_or_else(|| bad("also", v))?;
            also.push((c, w.map(String::from).collect()));
        }
        let cases = m
            .all("case")
            .map(|v| {
                let mut w = v.split_whitespace();
                (w.next().unwrap_or_default().to_string(), w.map(String::from).collect())
            })
            .collect();
        Ok(TestInfo {
            bin: bin.to_string(),
            elf: elf.to_path_buf(),
            suite: m.suite().to_string(),
            file: m.get("file").unwrap_or_default().to_string(),
            line: num("line")?.unwrap_or(0) as u32,
            smp,
            also,
            timeout: num("timeout")?,
            params: words(m.get("params").unwrap_or_default()),
            expect: m.expect(),
            expect_text: m.get("expect_text").unwrap_or_default().to_string(),
            output: m.all("output").map(String::from).collect(),
            tags: m.get("tags").map(|t| t.split(',').map(String::from).collect()).unwrap_or_default(),
            min_cpus: num("min_cpus")?.unwrap_or(1) as u32,
            skip_params: words(m.get("skip_params").unwrap_or_default()),
            cases,
            mem: num("mem")?.map(|m| m as u32),
            exclusive: m.get("exclusive") == Some("1"),
            smp_only: m.get("smp_only") == Some("1"),
            uefi: m.get("uefi") == Some("1"),
            name,
        })
    }
}

/// Every test in the ELF at `elf`, in link order (the order the kernel runs a glob in).
/// An ELF without the section has no tests (an empty list, not an error).
pub fn list_elf(elf: &Path, bin: &str) -> Result<Vec<TestInfo>, Error> {
    let data = std::fs::read(elf).map_err(|e| Error(format!("cannot read {}: {e}", elf.display())))?;
    list_bytes(&data, elf, bin)
}

/// [`list_elf`] on the ELF's bytes.
pub fn list_bytes(data: &[u8], elf: &Path, bin: &str) -> Result<Vec<TestInfo>, Error> {
    let file = object::File::parse(data).map_err(|e| Error(format!("{}: not an ELF file: {e}", elf.display())))?;
    let Some(section) = file.section_by_name(SECTION) else {
        return Ok(Vec::new());
    };
    let bytes = section
        .data()
        .map_err(|e| Error(format!("{}: cannot read section {SECTION}: {e}", elf.display())))?;
    if bytes.len() % ENTRY_LEN != 0 {
        return Err(Error(format!(
            "{}: section {SECTION} is {} bytes, not a multiple of {ENTRY_LEN}: the kernel and the runner disagree \
             on the ktest entry layout (rebuild both)",
            elf.display(),
            bytes.len()
        )));
    }
    let mut out = Vec::new();
    for (i, entry) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
        let Some(meta) = Meta::parse(&entry[..META_LEN]) else {
            return Err(Error(format!("{}: ktest entry {i} has no `ktest v1` metadata", elf.display())));
        };
        out.push(TestInfo::from_meta(&meta, bin, elf)?);
    }
    Ok(out)
}
