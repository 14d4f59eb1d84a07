//! Record/replay of single-core trials (`--record`, `--gdb`): QEMU's deterministic
//! record/replay (`-icount shift=N,rr=record,rrfile=F` with the disk behind a `blkreplay`
//! driver) runs a one-CPU guest instruction for instruction, timer interrupts included.

use std::path::PathBuf;

use super::plan::Trial;
use super::Options;
use crate::RunConfig;

/// A recording to make for one boot.
#[derive(Debug, Clone)]
pub struct Replay {
    pub file: PathBuf,
}

/// The replay file of a trial when `--record` is on and the trial runs on one core.
pub fn plan_record(trial: &Trial, opt: &Options, attempt: u32) -> Option<Replay> {
    if !opt.record || trial.smp != 1 {
        return None;
    }
    let safe: String = trial.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
    let dir = crate::repo_dir().ok()?.join("target").join("ktest-replay");
    let _ = std::fs::create_dir_all(&dir);
    Some(Replay { file: dir.join(format!("{safe}-seed{}-{attempt}.rr", trial.seed)) })
}

/// The QEMU options that record (or replay) `image` to/from `file`.
pub fn rr_args(image: &std::path::Path, file: &std::path::Path, mode: &str) -> Vec<String> {
    vec![
        "-icount".into(),
        format!("shift=5,rr={mode},rrfile={}", file.display()),
        "-drive".into(),
        format!("file={},if=none,snapshot=on,id=img-direct,format=raw", image.display()),
        "-drive".into(),
        "driver=blkreplay,if=none,image=img-direct,id=img-blkreplay".into(),
        "-device".into(),
        "ide-hd,drive=img-blkreplay".into(),
    ]
}

/// `cfg` recording to `r.file`: the disk goes through blkreplay instead of the plain drive.
pub fn apply(cfg: RunConfig, image: &std::path::Path, r: &Replay) -> RunConfig {
    let mut cfg = cfg;
    cfg.record_replay = Some(rr_args(image, &r.file, "record"));
    cfg
}
