//! Which checkout to build: the repository root, found when the runner runs.
//!
//! The runner used to bake `CARGO_MANIFEST_DIR` in at compile time. Cargo does not rebuild the
//! runner after a tree is copied or moved (its fingerprints are relative to the target dir), so a
//! copy of a lab tree silently built and booted the *original* tree's kernel, and a moved tree
//! could not find cargo's working directory at all. Now the root is looked up at run time, in
//! this order, and each candidate must look like this repository (see [`is_repo_root`]):
//!
//! 1. `GMPOS_ROOT`, when set and not empty. `.cargo/config.toml` sets it (relative to the
//!    directory holding `.cargo/`) for everything cargo runs: `cargo run`, `cargo test`. A value
//!    that does not point at a checkout is an error, not a reason to guess.
//! 2. The ancestors of the running executable: `ROOT/target/debug/gmpos` or
//!    `ROOT/target/debug/deps/TEST-HASH` (a copied or moved tree takes its `target/` along).
//! 3. The ancestors of the current directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::Error;

/// The environment variable naming the repository root.
pub const ROOT_ENV: &str = "GMPOS_ROOT";

/// Does `dir` look like the root of this repository: a top-level `Cargo.toml` and the kernel's
/// cargo project in `kernel/` (a `Cargo.toml` whose package is named `kernel`)?
pub fn is_repo_root(dir: &Path) -> bool {
    if !dir.join("Cargo.toml").is_file() {
        return false;
    }
    match std::fs::read_to_string(dir.join("kernel").join("Cargo.toml")) {
        Ok(text) => text.lines().any(|l| {
            let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            l == "name=\"kernel\""
        }),
        Err(_) => false,
    }
}

/// The root for the given facts (the pure part of [`repo_dir`], for tests): `env` is the value of
/// `GMPOS_ROOT`, `exe` the running executable, `cwd` the current directory.
pub fn find_repo_root(env: Option<OsString>, exe: Option<&Path>, cwd: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(&v);
        let dir = if dir.is_relative() { cwd.map(|c| c.join(&dir)).unwrap_or(dir) } else { dir };
        if is_repo_root(&dir) {
            return Ok(dir.canonicalize().unwrap_or(dir));
        }
        return Err(Error(format!(
            "{ROOT_ENV}={} is not a gmpos checkout (it needs Cargo.toml and kernel/Cargo.toml); \
             unset it or point it at the repository root",
            dir.display()
        )));
    }
    let mut tried = Vec::new();
    for start in [exe.and_then(Path::parent), cwd].into_iter().flatten() {
        if let Some(root) = start.ancestors().find(|d| is_repo_root(d)) {
            return Ok(root.to_path_buf());
        }
        tried.push(start.display().to_string());
    }
    Err(Error(format!(
        "cannot find the gmpos repository root (a directory with Cargo.toml and kernel/Cargo.toml) \
         above {}; run from inside the checkout, or set {ROOT_ENV}=/path/to/gmpos",
        if tried.is_empty() { "(no executable path or current directory)".to_string() } else { tried.join(" or ") }
    )))
}

/// The repository root of this run, looked up once (see the module comment).
pub fn repo_dir() -> Result<PathBuf, Error> {
    static ROOT: OnceLock<Result<PathBuf, Error>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let exe = std::env::current_exe().ok().map(|p| p.canonicalize().unwrap_or(p));
        let cwd = std::env::current_dir().ok();
        find_repo_root(std::env::var_os(ROOT_ENV), exe.as_deref(), cwd.as_deref())
    })
    .clone()
}

/// The kernel's cargo project: `ROOT/kernel`.
pub fn kernel_dir() -> Result<PathBuf, Error> {
    Ok(repo_dir()?.join("kernel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake checkout: Cargo.toml and kernel/Cargo.toml naming the `kernel` package.
    fn fake_tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        std::fs::create_dir_all(dir.join("target/debug/deps")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(dir.join("kernel/Cargo.toml"), "[package]\nname = \"kernel\"\n").unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gmpos-root-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn root_from_env_exe_and_cwd() {
        let a = tmp("a");
        let b = tmp("b");
        fake_tree(&a);
        fake_tree(&b);
        let exe_a = a.join("target/debug/gmpos");
        let test_b = b.join("target/debug/deps/runner-0123");
        // GMPOS_ROOT wins, then the executable's tree, then the current directory.
        let got = find_repo_root(Some(b.clone().into()), Some(&exe_a), Some(&a)).unwrap();
        assert_eq!(got, b.canonicalize().unwrap());
        assert_eq!(find_repo_root(None, Some(&exe_a), Some(&b)).unwrap(), a);
        assert_eq!(find_repo_root(Some("".into()), Some(&test_b), Some(&a)).unwrap(), b);
        assert_eq!(find_repo_root(None, Some(Path::new("/usr/bin/gmpos")), Some(&b.join("kernel"))).unwrap(), b);
        // A relative GMPOS_ROOT is relative to the current directory.
        assert_eq!(find_repo_root(Some("kernel/..".into()), None, Some(&a)).unwrap(), a.canonicalize().unwrap());
        // A GMPOS_ROOT that is not a checkout is an error, not a guess.
        let e = find_repo_root(Some("/nonexistent".into()), Some(&exe_a), Some(&a)).unwrap_err();
        assert!(e.0.contains("GMPOS_ROOT=/nonexistent is not a gmpos checkout"), "{e}");
        // Nothing found: a clear message naming where it looked and what to do.
        let e = find_repo_root(None, Some(Path::new("/usr/bin/gmpos")), Some(Path::new("/"))).unwrap_err();
        assert!(e.0.contains("cannot find the gmpos repository root") && e.0.contains("GMPOS_ROOT"), "{e}");
        // A kernel/Cargo.toml of some other package is not ours.
        std::fs::write(a.join("kernel/Cargo.toml"), "[package]\nname = \"linux\"\n").unwrap();
        assert!(!is_repo_root(&a));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn this_checkout_is_found() {
        let root = repo_dir().expect("the test runs inside the checkout");
        assert!(is_repo_root(&root));
        assert!(root.join("boot/src/root.rs").is_file());
    }
}
