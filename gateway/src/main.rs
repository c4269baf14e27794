use examreg_gateway::{Application, Config};
use examreg_kit::{client, config, grpc, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::load_or_exit(Config::from_env);
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let ok = tokio::net::TcpStream::connect(config.addr).await.is_ok();
        eprintln!("{}: {}", config.addr, if ok { "listening" } else { "down" });
        std::process::exit(if ok { 0 } else { 1 });
    }
    let _telemetry = telemetry::init("gateway");
    let stop = grpc::Trigger::default();
    let (keys, refresher) = client::synced_keys(&config.identity_url, &stop)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let app = Application::build(config, keys).await?;
    tracing::info!(addr = %app.addr(), "gateway listening");
    let result = app.run_until_stopped(grpc::shutdown_signal()).await;
    stop.fire();
    refresher.await?;
    result
}
