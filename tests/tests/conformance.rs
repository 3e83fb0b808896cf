//! The conformance suite, once per adapter. Another adapter is one more line.

wskit_tests::conformance_suite!(tokio, wskit_tests::adapter::Tokio);
wskit_tests::conformance_suite!(tokio_axum, wskit_tests::adapter::TokioAxum);
