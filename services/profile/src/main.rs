use examreg_kit::service::{Binary, Probe, main as serve};
use examreg_profile::{Application, Config};

fn main() -> anyhow::Result<()> {
    serve(Binary {
        name: "profile",
        config: Config::from_env,
        addr: |config| config.addr,
        identity_url: |config| Some(config.identity_url.clone()),
        probe: Probe::Grpc,
        start: Application::build,
    })
}
