use examreg_gateway::{Application, Config};
use examreg_kit::{auth::Keys, client, config, grpc, telemetry};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::load_or_exit(Config::from_env);
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let url = format!("http://{}/healthz", config.addr);
        let ok = tokio::net::TcpStream::connect(config.addr).await.is_ok();
        eprintln!("{url}: {}", if ok { "listening" } else { "down" });
        std::process::exit(if ok { 0 } else { 1 });
    }
    let _telemetry = telemetry::init("gateway");
    let keys = Keys::default();
    let identity = grpc::channel(&config.identity_url)?;
    client::fetch_jwks(identity.clone(), &keys, Duration::from_secs(120)).await?;
    let app = Application::build(config, keys.clone()).await?;
    tracing::info!(addr = %app.addr(), "gateway listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(client::jwks_refresher(
        identity,
        keys,
        Duration::from_secs(300),
        {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        },
    ));
    let result = app.run_until_stopped(grpc::shutdown_signal()).await;
    let _ = stop_tx.send(true);
    refresher.await?;
    result
}
