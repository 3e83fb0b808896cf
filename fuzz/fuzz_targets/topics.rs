#![no_main]
//! See `wskit_fuzz::topics`.
libfuzzer_sys::fuzz_target!(init: wskit_fuzz::install_panic_hook(), |data: &[u8]| {
    wskit_fuzz::run_topics(data)
});
