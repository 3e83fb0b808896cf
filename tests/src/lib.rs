//! # wskit-tests
//!
//! The behavioural conformance suite, written once and run against every adapter over real
//! loopback sockets with an independent client (tungstenite's, plus raw frames for what a
//! well-behaved client never sends).
//!
//! Adding an adapter is one [`Adapter`](adapter::Adapter) impl (start a server, return its
//! address and a shutdown function) and one line in `tests/conformance.rs`:
//!
//! ```ignore
//! wskit_tests::conformance_suite!(async_std, my_adapters::AsyncStd);
//! ```
//!
//! The hostile-input and fault suite ([`hostile`]) is instantiated the same way, in
//! `tests/hostile.rs`: `wskit_tests::hostile_suite!(async_std, my_adapters::AsyncStd);`.
//!
//! Binaries: `autobahn-echo` (raw echo for the Autobahn suite), `idle-conns` (memory per
//! idle authenticated connection) and `soak` (thousands of churning connections while rooms
//! publish: loss, duplication, order and memory).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod adapter;
pub mod app;
pub mod cases;
pub mod client;
pub mod hostile;

/// Instantiates every conformance case as a `#[test]` in a module named `$name`, run against
/// the adapter type `$adapter` (an implementor of [`adapter::Adapter`]).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $adapter:ty) => {
        mod $name {
            $crate::__conformance_cases!($adapter;
                handshake::unknown_path_is_404,
                handshake::plain_get_is_426,
                handshake::upgrade_is_101,
                handshake::http_handler_serves_plain_requests,
                handshake::origin_allow_list_is_enforced,
                handshake::oversized_head_is_431,
                handshake::garbage_head_is_400,
                handshake::silent_client_is_dropped,
                auth::query_token,
                auth::bearer_header,
                auth::cookie,
                auth::subprotocol_token,
                auth::custom_source,
                auth::async_verifier,
                auth::verifier_past_the_routes_deadline,
                messages::typed_echo,
                messages::invalid_json_keeps_connection,
                messages::unknown_type_keeps_connection,
                messages::validation_failed_keeps_connection,
                messages::async_handler_replies,
                messages::raw_text_and_binary_echo,
                messages::fragmented_message_is_reassembled,
                close::oversize_message_closes_1009,
                close::invalid_utf8_closes_1007,
                close::binary_without_handler_closes_1003,
                close::protocol_violation_closes_1002,
                close::handler_panic_closes_1011_only_that_connection,
                close::async_handler_panic_closes_1011_only_that_connection,
                close::client_close_is_answered,
                close::vanished_peer_is_1006,
                pubsub::fan_out_once_in_order_excluding_publisher,
                pubsub::unsubscribe_stops_delivery,
                pubsub::server_wide_publish_reaches_everyone,
                pubsub::slow_consumer_is_cut_off,
                lifecycle::idle_client_is_pinged_then_closed,
                lifecycle::ponging_client_stays_open,
                lifecycle::graceful_shutdown_drains_then_closes_1001,
                lifecycle::shutdown_is_bounded,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($adapter:ty; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$module::$case::<$adapter>();
            }
        )*
    };
}

/// Instantiates every hostile-input and fault case (see [`hostile`]) as a `#[test]` in a
/// module named `$name`, run against the adapter type `$adapter`, plus a 5-second soak of the
/// `soak` binary. Use it from an integration test of this package (the soak needs
/// `CARGO_BIN_EXE_soak`).
#[macro_export]
macro_rules! hostile_suite {
    ($name:ident, $adapter:ty) => {
        mod $name {
            $crate::__hostile_cases!($adapter;
                envelope::truncated_json_is_invalid_json,
                envelope::arrays_and_scalars_are_invalid_json,
                envelope::unknown_type_keeps_connection,
                envelope::duplicate_keys_are_refused,
                envelope::wrong_field_types_are_validation_failed,
                envelope::deep_nesting_is_refused_without_overflow,
                frames::oversize_message_closes_1009,
                frames::oversize_frame_header_closes_1009_before_payload,
                frames::tiny_fragments_are_reassembled_or_refused,
                frames::invalid_utf8_split_across_fragments_closes_1007,
                frames::binary_on_text_route_closes_1003,
                frames::forbidden_close_codes_close_1002,
                frames::ping_flood_is_answered,
                frames::unread_ping_flood_is_bounded,
                upgrade::silent_and_trickling_handshakes_are_dropped,
                upgrade::huge_heads_get_431,
                upgrade::bad_and_expired_tokens_get_401,
                upgrade::tokens_never_appear_in_logs,
                upgrade::lookalike_origins_get_403,
                upgrade::hostile_path_parameters_are_data,
                topics::a_million_subscribes_are_bounded,
                topics::huge_topic_names_are_refused,
                faults::handler_panics_close_1011_only_that_connection,
                faults::sends_after_close_are_dropped,
                faults::clients_vanishing_mid_publish,
                faults::slow_consumer_in_a_1000_member_room,
            );

            /// Five seconds of the soak binary (200 churning connections) on this adapter.
            #[test]
            fn soak_short() {
                $crate::hostile::soak::short::<$adapter>(env!("CARGO_BIN_EXE_soak"));
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __hostile_cases {
    ($adapter:ty; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::hostile::$module::$case::<$adapter>();
            }
        )*
    };
}
