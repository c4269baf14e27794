use examreg_kit::service::{Binary, Probe, main as serve};

fn main() -> anyhow::Result<()> {
    serve(Binary {
        name: "gateway",
        config: examreg_gateway::Config::from_env,
        // Probes and metrics have a port of their own.
        addr: |config| config.ops_addr,
        tls: |config| config.tls.clone(),
        identity: |config| Some((config.identity_url.clone(), config.client.clone())),
        probe: Probe::Http("/healthz"),
        start: examreg_gateway::Application::build,
    })
}
