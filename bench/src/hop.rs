//! The price of one gateway→service hop against a bare tonic call: the same directory read
//! (`ListRegions`) through the gateway's HTTP API and straight over gRPC, and a health check
//! against a tonic server with nothing else in it, each timed one call at a time.

use examreg_kit::auth::with_bearer;
use examreg_proto::profile::v1::{
    ListRegionsRequest, profile_service_client::ProfileServiceClient,
};
use serde_json::{Value, json};
use std::time::Instant;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const ROUNDS: usize = 500;

fn p50(mut micros: Vec<f64>) -> f64 {
    micros.sort_by(f64::total_cmp);
    micros[micros.len() / 2] / 1000.0
}

async fn timed<F, Fut>(mut call: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..50 {
        call().await?;
    }
    let mut micros = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        call().await?;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(p50(micros))
}

pub(crate) async fn measure(
    http: &reqwest::Client,
    base: &str,
    profile_url: &str,
    tls: &examreg_kit::tls::Settings,
    token: &str,
) -> anyhow::Result<Value> {
    let price = tls_price(tls).await?;
    let profile = ProfileServiceClient::new(examreg_kit::channel::lazy(profile_url, tls)?);
    let direct = timed(|| {
        let mut profile = profile.clone();
        async move {
            profile
                .list_regions(with_bearer(ListRegionsRequest {}, token)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    // Each call from an address of its own: the per-IP budget is not what is measured here.
    let calls = std::sync::atomic::AtomicU32::new(0);
    let through_gateway = timed(|| async {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = http
            .get(format!("{base}/v1/reference/regions"))
            .header(
                "x-forwarded-for",
                format!("10.255.{}.{}", (n >> 8) & 255, n & 255),
            )
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        response.bytes().await?;
        Ok(())
    })
    .await?;
    let hop = through_gateway - direct;
    Ok(json!({
        "bare_tonic_p50_ms": price["bare_tonic_p50_ms"],
        "bare_tonic_tls_p50_ms": price["bare_tonic_tls_p50_ms"],
        "new_connection_p50_ms": price["new_connection_p50_ms"],
        "new_tls_connection_p50_ms": price["new_tls_connection_p50_ms"],
        "direct_list_regions_p50_ms": direct,
        "gateway_list_regions_p50_ms": through_gateway,
        "gateway_hop_p50_ms": hop,
        "hop_over_bare_tonic": hop / price["bare_tonic_p50_ms"].as_f64().unwrap_or(f64::NAN),
    }))
}

/// The price of the suite's TLS (`tls`, mutual when it asks callers for certificates) on a
/// bare tonic server: one health check at a time on a kept connection, with and without it,
/// and a new connection's first call (the handshake), with and without it; milliseconds, p50.
pub(crate) async fn tls_price(tls: &examreg_kit::tls::Settings) -> anyhow::Result<Value> {
    let bare = echo(None).await?;
    let connect = first_call(None).await?;
    let (bare_tls, connect_tls) = match tls.server()? {
        Some(server) => (
            json!(echo(Some((server.clone(), tls))).await?),
            json!(first_call(Some((server, tls))).await?),
        ),
        None => (Value::Null, Value::Null),
    };
    Ok(json!({
        "bare_tonic_p50_ms": bare,
        "bare_tonic_tls_p50_ms": bare_tls,
        "new_connection_p50_ms": connect,
        "new_tls_connection_p50_ms": connect_tls,
        "mutual": tls.client_ca.is_some(),
    }))
}

type Tls<'a> = Option<(examreg_kit::tls::ServerTls, &'a examreg_kit::tls::Settings)>;

/// A tonic server with health only, over `tls` or plaintext; its URL.
async fn bare_server(tls: &Tls<'_>) -> anyhow::Result<String> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder().add_service(health);
    match tls {
        None => {
            // TCP_NODELAY as the suite's servers (and the TLS ones here) set it.
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(server.serve_with_incoming(incoming));
            Ok(format!("http://{addr}"))
        }
        Some((tls, _)) => {
            tokio::spawn(server.serve_with_incoming(tls.clone().incoming(listener)));
            Ok(format!("https://{addr}"))
        }
    }
}

/// One health check at a time on one kept connection.
async fn echo(tls: Tls<'_>) -> anyhow::Result<f64> {
    let url = bare_server(&tls).await?;
    let settings = tls
        .map(|(_, settings)| settings.clone())
        .unwrap_or_default();
    let echo = HealthClient::new(examreg_kit::channel::lazy(&url, &settings)?);
    timed(|| {
        let mut echo = echo.clone();
        async move {
            echo.check(HealthCheckRequest::default()).await?;
            Ok(())
        }
    })
    .await
}

/// A new connection's first health check (with its TLS handshake, if any).
async fn first_call(tls: Tls<'_>) -> anyhow::Result<f64> {
    let url = bare_server(&tls).await?;
    let settings = tls
        .map(|(_, settings)| settings.clone())
        .unwrap_or_default();
    timed(|| {
        let channel = examreg_kit::channel::lazy(&url, &settings);
        async move {
            HealthClient::new(channel?)
                .check(HealthCheckRequest::default())
                .await?;
            Ok(())
        }
    })
    .await
}
