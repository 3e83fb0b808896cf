//! The conformance suite, once per adapter. Another adapter is one more line.

wskit_tests::conformance_suite!(tokio, wskit_tests::adapter::Tokio);
wskit_tests::conformance_suite!(tokio_axum, wskit_tests::adapter::TokioAxum);
wskit_tests::conformance_suite!(async_std, wskit_tests::adapter::AsyncStd);
wskit_tests::conformance_suite!(smol, wskit_tests::adapter::Smol);
wskit_tests::conformance_suite!(blocking, wskit_tests::adapter::Blocking);
