//! Compiles every `.proto` under `examreg/` with protox (no protoc install needed) and writes
//! the descriptor set next to the generated code so services can serve reflection.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "examreg/biometrics/v1/biometrics.proto",
        "examreg/identity/v1/identity.proto",
        "examreg/onboarding/v1/onboarding.proto",
        "examreg/profile/v1/profile.proto",
        "examreg/retention/v1/retention.proto",
        "examreg/verification/v1/verification.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("examreg_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // A photo's chunks share the buffer it arrived in, on both sides of the stream.
        .bytes(".examreg.biometrics.v1.UploadCaptureRequest.chunk")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
