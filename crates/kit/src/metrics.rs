//! Prometheus metrics: one recorder per process, rendered at `/metrics` on the binary's
//! operators' port (plain HTTP), and every RPC counted with its outcome and timed.
//!
//! Names: `grpc_server_handled_total{method,code}` and
//! `grpc_server_handling_seconds{method}` for every service; business counters are named
//! after their service (e.g. `verification_codes_sent_total`).

use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::{
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

/// Latency buckets from a millisecond to ten seconds (photo checks and argon2 included).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// The process-wide recorder, installed on first use.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("buckets are valid")
                .install_recorder()
                .expect("the metrics recorder installs once")
        })
        .clone()
}

/// Records one finished RPC.
fn rpc_done(method: &str, code: &str, started: Instant) {
    let method = method.to_owned();
    metrics::counter!("grpc_server_handled_total", "method" => method.clone(), "code" => code.to_owned())
        .increment(1);
    metrics::histogram!("grpc_server_handling_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
}

/// The gRPC status of a response: from its headers (a trailers-only answer, which every
/// refusal is), OK otherwise.
fn code_of<B>(response: &http::Response<B>) -> String {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or_else(
            || "OK".to_owned(),
            |n| format!("{:?}", tonic::Code::from(n)),
        )
}

/// Tower layer that counts and times every gRPC call by its method and outcome (refusals of
/// the auth layer within included); scrapes of [`PATH`] are not counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered(inner)
    }
}

/// The service [`MetricsLayer`] wraps.
#[derive(Clone, Debug)]
pub struct Metered<S>(S);

impl<S, B, R> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.uri().path().to_owned();
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await;
            if method != PATH {
                let code = response
                    .as_ref()
                    .map_or_else(|_| "Unavailable".to_owned(), code_of);
                rpc_done(&method, &code, started);
            }
            response
        })
    }
}
