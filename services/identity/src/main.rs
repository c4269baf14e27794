use examreg_identity::{Application, Config};
use examreg_kit::{config, grpc, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::load_or_exit(Config::from_env);
    grpc::healthcheck_subcommand(config.addr);
    let _telemetry = telemetry::init("identity");
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.addr(), "identity listening");
    app.run_until_stopped(grpc::shutdown_signal()).await
}
