//! Fuzz targets for the wskit core, as plain functions.
//!
//! Each `run_*` function takes the raw bytes libFuzzer generates and panics when the core
//! breaks one of its promises (SPEC §4, the driving-loop contract in the crate docs). The
//! binaries in `fuzz_targets/` call them, and `core/tests/fuzz_replay.rs` includes this file
//! with `#[path]` to replay every committed corpus and regression input on stable Rust.
//!
//! Modules refer to each other through `super::` (never `crate::`) so the same source works
//! both as this crate's root and as a module inside that test.
#![forbid(unsafe_code)]

pub mod driver;
pub mod envelope;
pub mod handshake;
pub mod json;
pub mod known;
pub mod server;
pub mod topics;

use std::cell::Cell;
use std::sync::Once;

/// Arbitrary text as a message to a route with several typed handlers.
pub fn run_envelope(data: &[u8]) {
    guarded(|| envelope::run(data));
}

/// An arbitrary upgrade request against a naive reference implementation.
pub fn run_handshake(data: &[u8]) {
    guarded(|| handshake::run(data));
}

/// Subscribe/unsubscribe/publish/close sequences against a `BTreeMap` model.
pub fn run_topics(data: &[u8]) {
    guarded(|| topics::run(data));
}

/// The whole state machine under arbitrary event sequences.
pub fn run_server(data: &[u8]) {
    guarded(|| server::run(data));
}

/// A target: one fuzz input in, a panic out when the core breaks a promise.
pub type Target = fn(&[u8]);

/// Every target by name (the directory names under `corpus/` and `regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", run_envelope),
    ("handshake", run_handshake),
    ("topics", run_topics),
    ("server", run_server),
];

/// The payload of the panics our own handlers raise on purpose (the core turns them into
/// 1011); any other panic, even one the core catches, is a bug.
#[derive(Debug)]
pub struct DeliberatePanic;

thread_local! {
    static UNEXPECTED_PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Installs a panic hook that ignores [`DeliberatePanic`] and counts every other panic before
/// passing it to the previous hook (libFuzzer's aborts; the test harness's prints).
///
/// The core catches handler panics, so without this a panic inside the core's own code that
/// happens to run under `catch_unwind` would go unnoticed.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().is::<DeliberatePanic>() {
                return;
            }
            UNEXPECTED_PANICS.with(|n| n.set(n.get() + 1));
            next(info);
        }));
    });
}

/// The text form of an input (first byte `#`): lines that are not comments, each split into
/// its first word and the rest. Seeds in this form are readable and easy to review.
pub fn script(data: &[u8]) -> Option<Vec<(String, Vec<String>)>> {
    let text = std::str::from_utf8(data.strip_prefix(b"#")?).ok()?;
    let lines = text.lines().skip(1).map(str::trim);
    let ops = lines.filter(|l| !l.is_empty() && !l.starts_with('#'));
    Some(
        ops.map(|l| {
            let mut words = l.split_whitespace().map(str::to_owned);
            (words.next().unwrap_or_default(), words.collect())
        })
        .collect(),
    )
}

/// Argument `i` of a script line as a small number (0 when absent or not a number).
pub fn arg(args: &[String], i: usize) -> u8 {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// Runs one input and fails if a panic was swallowed along the way.
fn guarded(f: impl FnOnce()) {
    install_panic_hook();
    let before = UNEXPECTED_PANICS.with(Cell::get);
    f();
    let after = UNEXPECTED_PANICS.with(Cell::get);
    assert_eq!(
        before, after,
        "a panic was caught inside the core (see above)"
    );
}
