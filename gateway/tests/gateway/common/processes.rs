//! The suite as separate processes of its binaries (what Kubernetes runs), for the tests that
//! need what only a process has: its own telemetry, its own memory.

use examreg_kit::tokens::SigningKey;
use examreg_testkit as tk;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The suite as separate processes of its binaries, on loopback; killed when dropped,
/// whatever happens.
pub(crate) struct Processes {
    children: Vec<(&'static str, Child)>,
    /// The gateway's base URL.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The suite's binaries: `cargo nextest run --workspace` (deploy/test) builds them next to the
/// test binaries; a run of this package alone builds them here when they are missing.
pub(crate) fn binaries() -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let names = [
        "identity",
        "verification",
        "biometrics",
        "profile",
        "gateway",
    ];
    if names
        .iter()
        .all(|n| dir.join(format!("examreg-{n}")).exists())
    {
        return dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--bins"])
        .env("SQLX_OFFLINE", "true");
    for name in names {
        build.args(["-p", &format!("examreg-{name}")]);
    }
    assert!(
        build.status().unwrap().success(),
        "the suite's binaries build"
    );
    dir
}

fn spawn(bin: &std::path::Path, name: &str, env: &[(&str, String)], otlp: Option<&str>) -> Child {
    let mut command = Command::new(bin.join(format!("examreg-{name}")));
    command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(otlp) = otlp {
        command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    }
    command.spawn().unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "the suite did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the five binaries on free loopback ports against the local stack, exporting traces
/// to `otlp` if given, the gateway with `gateway_env` besides its own settings; returns once
/// the gateway is ready.
pub(crate) async fn start(otlp: Option<&str>, gateway_env: &[(&str, String)]) -> Processes {
    let bin = tokio::task::spawn_blocking(binaries).await.unwrap();
    let signing_pem = SigningKey::generate_pem();
    let proof_pem = SigningKey::generate_pem();
    let proof = SigningKey::from_pem(&proof_pem).unwrap();
    let secret = "processes-gateway-secret-0123456789";
    // The services' own clients, which open the revocation feed.
    let watchers = ["verification", "biometrics", "profile"].map(tk::client);
    let mut clients = vec![json!({
        "id": "gateway",
        "secret_sha256": hex::encode(sha2::Sha256::digest(secret.as_bytes())),
        "scopes": ["accounts:create", "accounts:read", "accounts:recover", "sessions:create",
                   "verification:send", "verification:confirm", "revocations:watch"],
    })];
    for (watcher, digest) in &watchers {
        clients.push(
            json!({"id": watcher.id, "secret_sha256": digest, "scopes": ["revocations:watch"]}),
        );
    }
    let clients = Value::Array(clients);
    let client_secret = |name: &str| {
        let (watcher, _) = watchers.iter().find(|(w, _)| w.id == name).unwrap();
        watcher.secret.expose().to_owned()
    };
    let port = |_: &str| free_port();
    let (identity, verification, biometrics, profile, gateway) = (
        port("identity"),
        port("verification"),
        port("biometrics"),
        port("profile"),
        port("gateway"),
    );
    let (gateway_admin, gateway_ops) = (port("gateway admin"), port("gateway ops"));
    let identity_url = format!("http://127.0.0.1:{identity}");
    let (s3_id, s3_key) = tk::s3_credentials();
    let mut children = Vec::new();
    children.push((
        "identity",
        spawn(
            &bin,
            "identity",
            &[
                ("IDENTITY_ADDR", format!("127.0.0.1:{identity}")),
                (
                    "IDENTITY_DATABASE_URL",
                    tk::fresh_database("processes_identity").await,
                ),
                ("IDENTITY_SIGNING_KEY", signing_pem),
                ("IDENTITY_PROOF_PUBLIC_KEY", proof.public_pem()),
                ("IDENTITY_SERVICE_CLIENTS", clients.to_string()),
                (
                    "VERIFICATION_URL",
                    format!("http://127.0.0.1:{verification}"),
                ),
                ("BIOMETRICS_URL", format!("http://127.0.0.1:{biometrics}")),
                ("PROFILE_URL", format!("http://127.0.0.1:{profile}")),
            ],
            otlp,
        ),
    ));
    children.push((
        "verification",
        spawn(
            &bin,
            "verification",
            &[
                ("VERIFICATION_ADDR", format!("127.0.0.1:{verification}")),
                ("VERIFICATION_REDIS_URL", tk::redis_url()),
                (
                    "VERIFICATION_KEY_PREFIX",
                    tk::unique_prefix("processes_verification"),
                ),
                (
                    "VERIFICATION_SMTP_URL",
                    format!("smtp://{}", tk::smtp_addr()),
                ),
                (
                    "VERIFICATION_CODE_KEY",
                    "processes-code-key-0123456789abcdef01234".into(),
                ),
                ("VERIFICATION_PROOF_KEY", proof_pem.clone()),
                ("VERIFICATION_CLIENT_SECRET", client_secret("verification")),
                ("IDENTITY_URL", identity_url.clone()),
            ],
            otlp,
        ),
    ));
    children.push((
        "biometrics",
        spawn(
            &bin,
            "biometrics",
            &[
                ("BIOMETRICS_ADDR", format!("127.0.0.1:{biometrics}")),
                (
                    "BIOMETRICS_DATABASE_URL",
                    tk::fresh_database("processes_biometrics").await,
                ),
                ("BIOMETRICS_S3_ENDPOINT", tk::s3_endpoint()),
                (
                    "BIOMETRICS_S3_PREFIX",
                    tk::unique_prefix("processes").replace(':', "/"),
                ),
                ("BIOMETRICS_S3_ACCESS_KEY_ID", s3_id),
                ("BIOMETRICS_S3_SECRET_ACCESS_KEY", s3_key),
                (
                    "BIOMETRICS_MASTER_KEYS",
                    "dev1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".into(),
                ),
                ("BIOMETRICS_CLIENT_SECRET", client_secret("biometrics")),
                ("IDENTITY_URL", identity_url.clone()),
            ],
            otlp,
        ),
    ));
    children.push((
        "profile",
        spawn(
            &bin,
            "profile",
            &[
                ("PROFILE_ADDR", format!("127.0.0.1:{profile}")),
                (
                    "PROFILE_DATABASE_URL",
                    tk::fresh_database("processes_profile").await,
                ),
                ("PROFILE_CLIENT_SECRET", client_secret("profile")),
                ("IDENTITY_URL", identity_url.clone()),
            ],
            otlp,
        ),
    ));
    children.push((
        "gateway",
        spawn(
            &bin,
            "gateway",
            &[
                ("GATEWAY_ADDR", format!("127.0.0.1:{gateway}")),
                ("GATEWAY_ADMIN_ADDR", format!("127.0.0.1:{gateway_admin}")),
                ("GATEWAY_OPS_ADDR", format!("127.0.0.1:{gateway_ops}")),
                ("GATEWAY_REDIS_URL", tk::redis_url()),
                ("GATEWAY_KEY_PREFIX", tk::unique_prefix("processes_gateway")),
                ("GATEWAY_CLIENT_SECRET", secret.into()),
                (
                    "GATEWAY_POW_KEY",
                    "processes-pow-key-0123456789abcdef01234567".into(),
                ),
                ("IDENTITY_URL", identity_url.clone()),
                (
                    "VERIFICATION_URL",
                    format!("http://127.0.0.1:{verification}"),
                ),
                ("BIOMETRICS_URL", format!("http://127.0.0.1:{biometrics}")),
                ("PROFILE_URL", format!("http://127.0.0.1:{profile}")),
            ]
            .into_iter()
            .chain(gateway_env.iter().cloned())
            .collect::<Vec<_>>(),
            otlp,
        ),
    ));
    let base = format!("http://127.0.0.1:{gateway}");
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("http://127.0.0.1:{gateway_ops}")).await;
    Processes {
        children,
        base,
        http,
    }
}

impl Processes {
    /// The process id of the service `name`.
    pub(crate) fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a process of the suite")
            .1
            .id()
    }

    /// A call to the gateway with a JSON body (or none) and `headers`; its status and JSON.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let (status, _, json) =
            super::call_at(&self.http, &self.base, method, path, body, headers).await;
        (status, json)
    }

    /// Registers a new applicant through the public API and logs in: the flow id, the account
    /// id and the session's answer.
    pub(crate) async fn registered(&self, iin: &str, password: &str) -> (String, String, Value) {
        let email = tk::unique_email();
        let (post, put) = (reqwest::Method::POST, reqwest::Method::PUT);
        let start =
            json!({"citizenship": "KZ", "terms_version": "2026-01", "terms_accepted": true});
        let (status, flow) = self
            .call(post.clone(), "/v1/registrations", Some(start), &[])
            .await;
        // Said with the answer, should it ever be refused (a CI run under the Redis Cluster
        // once got no flow here, and nothing to tell why).
        let flow_id = flow["flow_id"]
            .as_str()
            .unwrap_or_else(|| panic!("the registration did not start: {status} {flow}"))
            .to_owned();
        let path = |step: &str| format!("/v1/registrations/{flow_id}/{step}");
        self.call(
            put.clone(),
            &path("identifier"),
            Some(json!({"iin": iin})),
            &[],
        )
        .await;
        self.call(put, &path("email"), Some(json!({"email": email})), &[])
            .await;
        let code = tk::nth_code(&email, 1).await;
        self.call(
            post.clone(),
            &path("email/verify"),
            Some(json!({"code": code})),
            &[],
        )
        .await;
        let password_body = json!({"password": password, "password_confirmation": password});
        let (status, created) = self
            .call(post.clone(), &path("password"), Some(password_body), &[])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let account_id = created["account_id"].as_str().unwrap().to_owned();
        let login = json!({"login": iin, "password": password});
        let (status, session) = self.call(post, "/v1/sessions", Some(login), &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        (flow_id, account_id, session)
    }
}
