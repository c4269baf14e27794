//! Finds the SeetaFace frontal model that the rustface crate ships in its package, so the
//! binary embeds it without a copy in this repository or a download at run time. The
//! package's folder is also handed to the tests, which use its group photograph.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    // Only this target's packages, already downloaded for this build; if some are not (a
    // build of this crate alone on a fresh machine), let cargo fetch them.
    let metadata = |offline: bool| {
        let mut command = Command::new(&cargo);
        command
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &target,
            ])
            .current_dir(&manifest_dir);
        if offline {
            command.arg("--offline");
        }
        command.output().expect("cargo metadata runs")
    };
    let mut output = metadata(true);
    if !output.status.success() {
        output = metadata(false);
    }
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let manifest = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "rustface"))
        .and_then(|p| p["manifest_path"].as_str())
        .expect("rustface is a dependency");
    let dir = PathBuf::from(manifest)
        .parent()
        .expect("a manifest has a folder")
        .to_path_buf();
    let model = dir.join("model/seeta_fd_frontal_v1.0.bin");
    assert!(model.is_file(), "{} is missing", model.display());
    println!("cargo:rustc-env=SEETA_MODEL={}", model.display());
    println!("cargo:rustc-env=RUSTFACE_DIR={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
