//! Replays every committed fuzz input (`fuzz/corpus/<target>/*` and
//! `fuzz/regressions/<target>/*`) through the same target functions the cargo-fuzz binaries
//! call, on stable Rust and without libFuzzer, so a past crash can never come back unnoticed.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The inputs of one target in one directory, skipping READMEs and dotfiles.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target");
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} has no seed inputs"
    );
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).expect("readable input");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} input(s) failed (reproduce with `cargo +nightly fuzz run {target} FILE` \
         in fuzz/):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn envelope_inputs_replay() {
    replay("envelope");
}

#[test]
fn handshake_inputs_replay() {
    replay("handshake");
}

#[test]
fn topics_inputs_replay() {
    replay("topics");
}

#[test]
fn server_inputs_replay() {
    replay("server");
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["envelope", "handshake", "topics", "server"]);
}
