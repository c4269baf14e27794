//! Bad configuration stops the binary before it binds a port, naming every bad variable and
//! printing no secret.

use std::process::Command;

#[test]
fn invalid_config_exits_before_binding_and_names_the_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_examreg-identity"))
        .env_clear()
        .env("IDENTITY_ADDR", "not-an-address")
        .env(
            "IDENTITY_PROOF_PUBLIC_KEY",
            "-----BEGIN PUBLIC KEY-----\nsupersecret\n-----END PUBLIC KEY-----",
        )
        .env(
            "IDENTITY_SERVICE_CLIENTS",
            r#"[{"id":"gateway","secret_sha256":"supersecret","scopes":[]}]"#,
        )
        .env("IDENTITY_ARGON2_MEMORY_KIB", "4096")
        // The two listeners hold two connections: none would be left for calls.
        .env("IDENTITY_DATABASE_POOL_SIZE", "2")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for var in [
        "IDENTITY_ADDR",
        "IDENTITY_SIGNING_KEY",
        "IDENTITY_PROOF_PUBLIC_KEY",
        "IDENTITY_SERVICE_CLIENTS",
        "IDENTITY_ARGON2_MEMORY_KIB",
        "IDENTITY_DATABASE_POOL_SIZE",
    ] {
        assert!(stderr.contains(var), "{var} not named in:\n{stderr}");
    }
    assert!(
        !stderr.contains("supersecret"),
        "a secret leaked:\n{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing started");
}
