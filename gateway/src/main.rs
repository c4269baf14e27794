examreg_kit::main!(
    examreg_gateway,
    "gateway",
    examreg_kit::service::Probe::Http("/healthz")
);
