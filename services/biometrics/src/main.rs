use examreg_biometrics::{Application, Config};
use examreg_kit::service::{Binary, Probe, main as serve};

fn main() -> anyhow::Result<()> {
    serve(Binary {
        name: "biometrics",
        config: Config::from_env,
        addr: |config| config.addr,
        identity_url: |config| Some(config.identity_url.clone()),
        probe: Probe::Grpc,
        start: Application::build,
    })
}
