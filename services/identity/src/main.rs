use examreg_identity::{Application, Config};
use examreg_kit::service::{Binary, Probe, main as serve};

fn main() -> anyhow::Result<()> {
    serve(Binary {
        name: "identity",
        config: Config::from_env,
        addr: |config| config.addr,
        tls: |config| config.tls.clone(),
        // Identity checks tokens with its own keys.
        identity: |_| None,
        probe: Probe::Grpc,
        start: |config, _keys| Application::build(config),
    })
}
