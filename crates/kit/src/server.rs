//! The gRPC server start-up every service uses: bind (port 0 allowed, real address reported),
//! serve the service's routes behind three layers (the request's span, its count and time, its
//! caller's token: `telemetry::SpanLayer`, `metrics::MetricsLayer`, `auth::AuthLayer`) next to
//! grpc.health.v1 and server reflection (v1 and v1alpha), and stop gracefully: on the shutdown
//! signal health turns NOT_SERVING, the server goes on serving for [`LINGER`] (its callers take
//! it out of their sets meanwhile), then the listener closes and in-flight calls are drained
//! before `serve` returns. Beside it, the operators' port serves `/metrics` and `/healthz` over
//! plain HTTP.

use crate::{
    auth::{AuthLayer, Keys},
    metrics::MetricsLayer,
    telemetry::SpanLayer,
    tls::ServerTls,
};
use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Binds a listener; `127.0.0.1:0` gives a free port, which `local_addr` reports.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// How long a server keeps serving after its shutdown signal, health already NOT_SERVING:
/// more than the callers' probe interval and timeout (`balance::Timing`, 1 s each).
pub const LINGER: Duration = Duration::from_millis(2500);

/// What [`serve`] serves.
pub struct Parts {
    /// The gRPC port.
    pub listener: TcpListener,
    /// With it, the gRPC port is TLS only.
    pub tls: Option<ServerTls>,
    /// The operators' port: `/metrics` and `/healthz` over plain HTTP/1.1, with no token and
    /// no personal data, for Prometheus and the kubelet's probes (neither speaks TLS to a gRPC
    /// port of ours). `/healthz` answers 200 while the service takes calls, 503 once it drains.
    pub ops: TcpListener,
    pub routes: Routes,
    /// The fully qualified gRPC service names health reports as SERVING.
    pub names: &'static [&'static str],
    /// Checks the callers' tokens.
    pub keys: Keys,
    /// The RPC paths that need no token.
    pub public_paths: &'static [&'static str],
}

/// Serves `parts` until `shutdown` resolves, then drains in-flight calls.
pub async fn serve(
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let Parts {
        listener,
        tls,
        ops,
        routes,
        names: service_names,
        keys,
        public_paths,
    } = parts;
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in service_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    // Reflection lists this service's own API and health, not every examreg proto.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(examreg_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in service_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1().expect("descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("descriptor sets are valid");

    let serving = Arc::new(AtomicBool::new(true));
    let (ops_stop, ops_task) = ops_server(ops, serving.clone());
    let names: Vec<String> = service_names.iter().map(|s| (*s).to_owned()).collect();
    let draining = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight calls");
        serving.store(false, Ordering::Relaxed);
        reporter.set_not_serving_for_all(&names).await;
        // Still serving while the callers' probes see NOT_SERVING and take this replica out
        // of their sets (`balance`), so that no call meets a closed port.
        tokio::time::sleep(LINGER).await;
    };

    let routes = routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SpanLayer)
                .layer(MetricsLayer)
                .layer(AuthLayer::new(keys, public_paths)),
        )
        .add_routes(routes);
    let served = match tls {
        // Small answers go out at once: without TCP_NODELAY a reply split over two
        // segments waits for the caller's delayed ACK (~40 ms per call, measured).
        None => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, draining)
                .await
        }
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls.incoming(listener), draining)
                .await
        }
    };
    let _ = ops_stop.send(());
    let _ = ops_task.await;
    served
}

/// The operators' port (see [`Parts::ops`]), until its sender is sent on or dropped.
fn ops_server(
    listener: TcpListener,
    serving: Arc<AtomicBool>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let metrics = crate::metrics::recorder();
    let router = axum::Router::new()
        .route(
            crate::metrics::PATH,
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .route(
            HEALTHZ,
            axum::routing::get(move || {
                let serving = serving.load(Ordering::Relaxed);
                async move {
                    if serving {
                        (http::StatusCode::OK, "SERVING")
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
                    }
                }
            }),
        );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the operators' port failed");
        }
    });
    (stop, task)
}

/// The operators' port's health path.
pub const HEALTHZ: &str = "/healthz";

trait NotServingForAll {
    async fn set_not_serving_for_all(&self, names: &[String]);
}

impl NotServingForAll for tonic_health::server::HealthReporter {
    async fn set_not_serving_for_all(&self, names: &[String]) {
        for name in names {
            self.set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.set_service_status("", ServingStatus::NotServing).await;
    }
}

/// Resolves on SIGTERM or SIGINT: the production shutdown signal.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::{HEALTHZ, Parts, bind, serve};
    use crate::service::{Probe, healthcheck};
    use std::time::Duration;

    #[tokio::test]
    async fn the_operators_port_says_serving_then_draining_and_serves_metrics() {
        let any = "127.0.0.1:0".parse().unwrap();
        let (listener, _) = bind(any).await.unwrap();
        let (ops, ops_addr) = bind(any).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let parts = Parts {
            listener,
            tls: None,
            ops,
            routes: tonic::service::Routes::default(),
            names: &[],
            keys: crate::auth::Keys::default(),
            public_paths: &[],
        };
        let served = tokio::spawn(serve(parts, async {
            let _ = stopped.await;
        }));
        let plain = crate::tls::Settings::default();
        healthcheck(ops_addr, Probe::Http(HEALTHZ), &plain)
            .await
            .unwrap();
        healthcheck(ops_addr, Probe::Http(crate::metrics::PATH), &plain)
            .await
            .unwrap();

        // Draining: the kubelet sees 503 (and stops sending) while the calls in flight end.
        stop.send(()).unwrap();
        let mut refused = None;
        for _ in 0..40 {
            if let Err(e) = healthcheck(ops_addr, Probe::Http(HEALTHZ), &plain).await {
                refused = Some(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let refused = refused.expect("/healthz turns unhealthy while draining");
        assert!(refused.contains("503"), "{refused}");
        served.await.unwrap().unwrap();
        assert!(
            healthcheck(ops_addr, Probe::Http(HEALTHZ), &plain)
                .await
                .is_err(),
            "the operators' port closes with the server"
        );
    }
}
