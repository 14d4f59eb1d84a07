//! Fuzzing the runner's command line (issue 8): any sequence of arguments,
//! flags or junk, ends in a run configuration whose every field is in range,
//! in `--help`, or in a clear one-line error: never a panic.
use boot::{parse_args, validate_param_key, validate_param_value, Cli};
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
                prop_assert!((1..=255).contains(&cfg.smp), "{:?} -> smp {}", args, cfg.smp);
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
