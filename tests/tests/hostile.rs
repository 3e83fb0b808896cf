//! The hostile-input and fault suite (`wskit_tests::hostile`) against every adapter.

wskit_tests::hostile_suite!(tokio, wskit_tests::adapter::Tokio);
wskit_tests::hostile_suite!(tokio_axum, wskit_tests::adapter::TokioAxum);
wskit_tests::hostile_suite!(async_std, wskit_tests::adapter::AsyncStd);
wskit_tests::hostile_suite!(smol, wskit_tests::adapter::Smol);
wskit_tests::hostile_suite!(blocking, wskit_tests::adapter::Blocking);
