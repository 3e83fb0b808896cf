//! Benchmarks and load tools for wskit. The criterion benches of the core live in
//! `benches/core.rs`; run them with `cargo bench -p wskit-bench --bench core`.
#![forbid(unsafe_code)]
