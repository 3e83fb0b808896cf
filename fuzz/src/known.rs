//! Core bugs these targets found that are not fixed yet.
//!
//! While a constant here is `true`, the targets step around that bug (they accept the current
//! behaviour, or avoid the sequence that triggers it), so fuzzing keeps looking for other bugs
//! and `cargo test` stays green. The inputs that expose each bug are kept in
//! `fuzz/regressions/<target>/`, named after the constant. When the core is fixed, set the
//! constant to `false`: those inputs, and every fuzz run, are then checked strictly.

/// `envelope::decode` picks the error code from serde_json's error *category* instead of from
/// whether the text is JSON: `{"type":"join_room","roomId":5,` (not JSON) is answered
/// `validation_failed`, and valid JSON that serde_json refuses with a syntax-category error
/// (an array-form struct with extra elements, a number out of f64 range in a typed field) is
/// answered `invalid_json`. SPEC §4: not JSON is `invalid_json`, a wrong shape is
/// `validation_failed`.
pub const ERROR_CODE_FROM_SERDE_CATEGORY: bool = false;

/// `validate::to_wire_paths` finds wire names by looking the Rust names up in the message the
/// client sent, so issue paths keep Rust field names (`priority_level` instead of
/// `priorityLevel`) when that lookup fails: the document nests deeper than serde_json's
/// recursion limit (128) although the handler's type parsed fine (skipped values have no
/// limit), or a struct arrived in serde's array form (`"items":[["name"]]`), which has no keys.
pub const RUST_NAMES_IN_ISSUE_PATHS: bool = false;

/// `Server::shutdown` replaces the pending-authentication slab with a new one, so ticket
/// generations start over: a ticket issued before the shutdown completes (and accepts) an
/// upgrade made after it, with the other request's key, route and parameters.
pub const SHUTDOWN_RESETS_TICKETS: bool = false;

/// `Topics` keys memberships by `ConnId::index()` alone, and `Server::handle_commands` applies
/// `Unsubscribe` without checking the connection is alive: an async handler's unsubscribe that
/// runs after its connection closed removes the subscription of the connection now holding the
/// slot (a `debug_assert` in `Topics::detach` fires in debug builds), and `Server::topics_of`
/// of a closed connection lists the new occupant's topics.
pub const STALE_ID_REACHES_NEW_OCCUPANT: bool = false;
