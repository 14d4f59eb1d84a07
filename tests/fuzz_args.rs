//! Fuzzing the runner's command line (issue 8): any sequence of arguments,
//! flags or junk, ends in a run configuration whose every field is in range,
//! in `--help`, or in a clear one-line error: never a panic.
use boot::{parse_args, validate_param_key, validate_param_value, Cli, MAX_SMP};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    let flags = [
        "--smp", "--mem", "--uefi", "--gdb", "--timeout", "--release", "--bin", "--kernel", "bench", "-h", "--help",
        "--smp=", "--mem=", "--timeout=", "--bin=", "--", "-", "=",
    ];
    prop_oneof![
        3 => proptest::sample::select(flags.to_vec()).prop_map(String::from),
        2 => "[0-9]{0,12}",
        2 => "[a-z_]{1,10}=[a-z0-9,._-]{0,10}",
        1 => "--[a-z-]{1,8}(=[0-9a-z]{0,6})?",
        1 => "\\PC{0,16}",
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn any_command_line_is_a_config_or_a_clear_error(args in proptest::collection::vec(token(), 0..8)) {
        match parse_args(args.clone()) {
            Ok(Cli::Help) | Ok(Cli::Image { .. }) => {}
            Ok(Cli::Run(cfg)) => {
                prop_assert!((1..=MAX_SMP).contains(&cfg.smp), "{:?} -> smp {}", args, cfg.smp);
                prop_assert!(cfg.mem_mib >= 32, "{:?} -> mem {}", args, cfg.mem_mib);
                for (k, v) in &cfg.params {
                    prop_assert!(validate_param_key(k).is_ok(), "{:?}: key {:?} accepted", args, k);
                    prop_assert!(validate_param_value(k, v).is_ok(), "{:?}: value {:?} accepted", args, v);
                }
            }
            Err(e) => {
                let m = e.to_string();
                prop_assert!(!m.trim().is_empty(), "{:?}: empty error", args);
            }
        }
    }
}

/// The edges of `--smp`, which the random search above found stale once:
/// the kernel takes up to 1024 cores and the runner passes QEMU up to
/// `MAX_SMP`, so 300 is a configuration and 0 or `MAX_SMP + 1` a clear error.
#[test]
fn smp_edges() {
    let run = |v: String| parse_args(vec!["--smp".to_string(), v]);
    for ok in [1, 255, 256, 300, 1024, MAX_SMP] {
        match run(ok.to_string()) {
            Ok(Cli::Run(cfg)) => assert_eq!(cfg.smp, ok),
            other => panic!("--smp {ok}: {:?}", other.err().map(|e| e.to_string())),
        }
    }
    for bad in ["0".to_string(), (MAX_SMP + 1).to_string(), "-1".into(), "four".into()] {
        let e = run(bad.clone()).err().unwrap_or_else(|| panic!("--smp {bad} accepted"));
        assert!(e.to_string().contains("--smp"), "--smp {bad}: {e}");
    }
}
