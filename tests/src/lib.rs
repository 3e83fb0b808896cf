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
//! Binaries: `autobahn-echo` (raw echo for the Autobahn suite) and `idle-conns` (memory per
//! idle authenticated connection).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod adapter;
pub mod app;
pub mod cases;
pub mod client;

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
