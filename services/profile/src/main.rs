use examreg_kit::{client, config, grpc, telemetry};
use examreg_profile::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::load_or_exit(Config::from_env);
    grpc::healthcheck_subcommand(config.addr);
    let _telemetry = telemetry::init("profile");
    let stop = grpc::Trigger::default();
    let (keys, refresher) = client::synced_keys(&config.identity_url, &stop)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let app = Application::build(config, keys).await?;
    tracing::info!(addr = %app.addr(), "profile listening");
    let result = app.run_until_stopped(grpc::shutdown_signal()).await;
    stop.fire();
    refresher.await?;
    result
}
