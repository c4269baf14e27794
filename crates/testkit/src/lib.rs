//! Helpers for tests that run against the real local stack (deploy/test starts it): each test
//! gets its own Redis key prefix, its own Postgres database and its own email addresses, so
//! tests run in parallel and repeat.
#![forbid(unsafe_code)]

use examreg_kit::{auth::Claims, tokens::SigningKey};
use std::{net::SocketAddr, time::Duration};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn redis_url() -> String {
    var(
        "EXAMREG_TEST_REDIS",
        "rediss://examreg:examreg@127.0.0.1:6379",
    )
}

/// The local stack's directory of secrets, where `deploy/secrets` puts its certificates.
fn stack_secrets() -> std::path::PathBuf {
    examreg_home().join("secrets")
}

/// The local stack's Postgres server (`EXAMREG_TEST_PG`), over TLS verified against the
/// stack's CA unless the URL says otherwise; its options (`?sslmode=…`) follow the server.
pub fn postgres_url() -> String {
    std::env::var("EXAMREG_TEST_PG").unwrap_or_else(|_| {
        format!(
            "postgres://examreg:examreg@127.0.0.1:5432?sslmode=verify-full&sslrootcert={}",
            stack_secrets().join("tls_ca.crt").display()
        )
    })
}

/// The URL of the database `name` on [`postgres_url`]'s server, with its options.
pub fn database_url(name: &str) -> String {
    let server = postgres_url();
    match server.split_once('?') {
        Some((server, options)) => format!("{server}/{name}?{options}"),
        None => format!("{server}/{name}"),
    }
}

/// The local stack's TLS for gRPC (`deploy/secrets` makes it): its certificate, presented as
/// server and as client, and its CA, trusted for servers and asked of callers (mutual TLS).
pub fn tls() -> examreg_kit::tls::Settings {
    let dir = stack_secrets();
    let settings = examreg_kit::tls::Settings {
        cert: Some(dir.join("tls.crt")),
        key: Some(dir.join("tls.key")),
        ca: Some(dir.join("tls_ca.crt")),
        client_ca: Some(dir.join("tls_ca.crt")),
        ..examreg_kit::tls::Settings::default()
    };
    assert!(
        dir.join("tls.crt").exists(),
        "the local stack's certificates (deploy/secrets makes them) are in {}",
        dir.display()
    );
    settings
}

pub fn smtp_addr() -> String {
    var("EXAMREG_TEST_SMTP", "127.0.0.1:1025")
}

pub fn maildev_url() -> String {
    var("EXAMREG_TEST_MAILDEV", "http://127.0.0.1:1080")
}

/// A Redis key prefix no other test uses.
pub fn unique_prefix(what: &str) -> String {
    format!("test:{what}:{}:", Uuid::new_v4().simple())
}

/// An email address no other test uses.
pub fn unique_email() -> String {
    format!(
        "applicant.{}@example.kz",
        &Uuid::new_v4().simple().to_string()[..16]
    )
}

/// A loopback address free now, for a server a test starts later (its callers must know the
/// address first). The port is picked at random below the kernel's ephemeral range: a port the
/// kernel hands out (port 0) can be taken by any outgoing connection, say a Redis Cluster
/// client's, in the moment before the server binds it.
pub fn free_addr() -> std::net::SocketAddr {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if low > 11_000 {
        for _ in 0..200 {
            let port = 10_000 + u16::try_from(rand_below(u32::from(low - 10_000))).unwrap_or(0);
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return listener.local_addr().expect("a bound address");
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// A number below `n`, from a random UUID (no generator needed for picking ports).
fn rand_below(n: u32) -> u32 {
    let bits = Uuid::new_v4().as_u128();
    u32::try_from(bits % u128::from(n.max(1))).unwrap_or(0)
}

/// A stop button for a server a test runs: the receiver half is the shutdown signal to give
/// `run_until_stopped`, which completes when the sender is used or dropped.
pub fn stopper() -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    (stop, async move {
        let _ = stopped.await;
    })
}

/// Learns identity's signing keys from its JWK Set and starts watching the sessions it ends
/// as `client` (a configured client with `revocations:watch`), the way the services do in
/// production; returns once both are known.
pub async fn learn_keys(
    identity_url: &str,
    keys: &examreg_kit::auth::Keys,
    client: &examreg_kit::client::Credentials,
) {
    let identity = examreg_kit::channel::lazy(identity_url, &tls()).unwrap();
    keys.refetch_from(identity.clone());
    keys.fetch(identity.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    let token = examreg_kit::client::ServiceToken::of(identity.clone(), client);
    tokio::spawn(examreg_kit::client::watch_revocations(
        identity,
        keys.clone(),
        token,
        std::future::pending(),
    ));
    examreg_kit::client::revocations_current(keys, Duration::from_secs(10))
        .await
        .unwrap();
}

/// A service client of a test's identity: what the client presents, and the hex SHA-256 of its
/// secret that identity's configuration lists.
pub fn client(id: &str) -> (examreg_kit::client::Credentials, String) {
    use sha2::Digest;
    let secret = format!("{id}-secret-for-tests-0123456789");
    let digest = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let credentials = examreg_kit::client::Credentials {
        id: id.to_owned(),
        secret: examreg_kit::config::Secret::new(secret),
    };
    (credentials, digest)
}

/// A service token for `scopes`, signed by `key` as identity would.
pub fn service_token(key: &SigningKey, client: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    key.sign(&Claims::service(client, &scopes, Duration::from_secs(600)))
}

/// Identity's token for a change of `account`'s registration it recorded (a new change id),
/// as the owners' reopen and erase calls require; `steps` for a reopening.
pub fn change_token(
    key: &SigningKey,
    account: Uuid,
    action: examreg_kit::auth::ChangeAction,
    steps: &[&str],
) -> String {
    let change = examreg_kit::auth::Change {
        id: Uuid::new_v4(),
        action,
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        by: "support-agent".to_owned(),
    };
    key.sign(&Claims::change(account, change, Duration::from_secs(600)))
}

/// A random valid IIN of someone born 2003–2005, so parallel tests never collide.
pub fn random_iin(sex: examreg_domain::Sex) -> String {
    loop {
        let random = Uuid::new_v4().as_u128();
        let birth = chrono::NaiveDate::from_ymd_opt(2003, 1, 1).expect("literal")
            + chrono::Days::new(u64::try_from(random % 900).expect("small"));
        let serial = u16::try_from((random >> 16) % 10_000).expect("small");
        if let Some(iin) = examreg_domain::Iin::compose(birth, sex, serial) {
            return iin.as_str().to_owned();
        }
    }
}

/// A fresh database with a unique name, created through the stack's login role.
pub async fn fresh_database(what: &str) -> String {
    let name = format!("test_{what}_{}", Uuid::new_v4().simple());
    let admin = database_url("postgres");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("postgres of the local stack is up (deploy/test starts it)");
    sqlx::Executor::execute(
        &mut conn,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .expect("create test database");
    database_url(&name)
}

#[derive(Debug, serde::Deserialize)]
pub struct Mail {
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: String,
    pub to: Vec<Address>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Address {
    pub address: String,
}

/// Every letter maildev caught, oldest first.
pub async fn all_mails() -> Vec<Mail> {
    reqwest::get(format!("{}/email", maildev_url()))
        .await
        .expect("maildev of the local stack is up (deploy/test starts it)")
        .json()
        .await
        .expect("maildev answers JSON")
}

impl Mail {
    /// Whether the letter went to `address` (in any case).
    pub fn is_to(&self, address: &str) -> bool {
        self.to
            .iter()
            .any(|a| a.address.eq_ignore_ascii_case(address))
    }
}

/// Every letter maildev caught for `to`, oldest first.
pub async fn mails_to(to: &str) -> Vec<Mail> {
    all_mails()
        .await
        .into_iter()
        .filter(|m| m.is_to(to))
        .collect()
}

/// Waits until `to` has received `count` letters and returns them.
pub async fn wait_for_mails(to: &str, count: usize, within: Duration) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mails = mails_to(to).await;
        if mails.len() >= count {
            return mails;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{to} got {} letters, expected {count}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The six-digit code in a letter's text: the last run of exactly six digits.
pub fn code_in(mail: &Mail) -> String {
    let text = &mail.text;
    let bytes = text.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                found = Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    found.unwrap_or_else(|| panic!("no code in {text:?}"))
}

/// The code of the `nth` (1-based) letter to `to`, waiting for it.
pub async fn nth_code(to: &str, nth: usize) -> String {
    let mails = wait_for_mails(to, nth, Duration::from_secs(20)).await;
    code_in(&mails[nth - 1])
}

/// A TCP relay on a free loopback port that forwards to `target` only while it is on: stands
/// in for a dependency that goes down and comes back.
pub struct Relay {
    pub addr: SocketAddr,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Bytes forwarded from callers to the target, over every connection so far.
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    /// Reserves a port but does not listen yet (the dependency is "down").
    pub async fn down(target: &str) -> Self {
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        Self {
            addr,
            target: target.to_owned(),
            task: None,
            received: Default::default(),
        }
    }

    /// Bytes the callers sent through the relay so far (calls of one kind are alike, so this
    /// counts the calls a server behind it took).
    pub fn bytes_in(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts forwarding (the dependency is "back").
    pub async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind relay port");
        let target = self.target.clone();
        let received = self.received.clone();
        self.task = Some(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // Connections live in this set, so stopping the relay cuts them too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let target = target.clone();
                let received = received.clone();
                connections.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut from_caller, mut to_caller) = inbound.into_split();
                    let (mut from_target, mut to_target) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match from_caller.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    received
                                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                                    if to_target.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to_target.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut from_target, &mut to_caller).await;
                        let _ = to_caller.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and cuts every open connection (the dependency "went down").
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The S3 endpoint of the local stack's Garage.
pub fn s3_endpoint() -> String {
    var("EXAMREG_TEST_S3", "http://127.0.0.1:3900")
}

/// Garage's S3 address as host:port (for a relay in front of it).
pub fn s3_addr() -> String {
    let endpoint = s3_endpoint();
    endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned()
}

/// The local stack's Garage key (made by deploy/lib.sh), as (id, secret).
pub fn s3_credentials() -> (String, String) {
    let dir = examreg_home();
    let read = |name: &str| {
        std::fs::read_to_string(dir.join("secrets").join(name))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| panic!("the local stack's {name} (deploy/test makes it): {e}"))
    };
    (read("s3_key_id"), read("s3_key"))
}

/// The network that reads documents' machine-readable zones, as `deploy/mrz-model` installs it
/// for the local stack (or `EXAMREG_TEST_MRZ_MODEL`).
pub fn mrz_model() -> std::path::PathBuf {
    std::env::var_os("EXAMREG_TEST_MRZ_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| examreg_home().join("models/ppocrv4-rec.onnx"))
}

/// axe-core's rules, as `deploy/axe-core` installs them for the local stack (or
/// `EXAMREG_TEST_AXE_CORE`).
pub fn axe_core() -> std::path::PathBuf {
    std::env::var_os("EXAMREG_TEST_AXE_CORE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| examreg_home().join("node/axe.min.js"))
}

/// The local stack's home (`EXAMREG_HOME`, else `~/.cache/examreg`).
fn examreg_home() -> std::path::PathBuf {
    std::env::var_os("EXAMREG_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/examreg")
        })
}

/// Photographs for tests: a real portrait and images derived from it.
pub mod browser;
pub mod cards;
pub mod garage;
pub mod logs;
pub mod smtp;

pub mod photos {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage, imageops};

    /// A selfie: a crop of the NASA portrait of Eileen Collins (public domain) from
    /// scikit-image's sample data, 330 × 330.
    pub const SELFIE: &[u8] =
        include_bytes!("../../../services/biometrics/tests/fixtures/selfie.jpg");

    /// `photo` as a camera of `width` × `height` frames it (see `browser::camera_frame`), as
    /// a JPEG: what the selfie's page sends while the oval waits.
    pub fn camera_jpeg(photo: &DynamicImage, width: u32, height: u32) -> Vec<u8> {
        jpeg(&DynamicImage::ImageRgb8(crate::browser::camera_frame(
            photo, width, height,
        )))
    }

    /// The selfie, decoded.
    pub fn selfie() -> DynamicImage {
        image::load_from_memory(SELFIE).expect("the selfie decodes")
    }

    pub fn jpeg(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .to_rgb8()
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg)
            .expect("JPEG encodes");
        out
    }

    /// An identity card, 1000 × 630: a light card with printed lines and, on the front, the
    /// holder's photo (the selfie) on the left.
    pub fn id_card(front: bool) -> Vec<u8> {
        let mut card = RgbImage::from_pixel(1000, 630, Rgb([214, 226, 238]));
        if front {
            let photo = image::load_from_memory(SELFIE)
                .expect("the selfie decodes")
                .resize(300, 300, imageops::FilterType::Lanczos3);
            imageops::overlay(&mut card, &photo.to_rgb8(), 40, 160);
        }
        for line in 0..8u32 {
            for x in 380..(900 - line * 30) {
                for y in 0..6 {
                    if (x / 7) % 3 != 0 {
                        card.put_pixel(x, 200 + line * 45 + y, Rgb([30, 30, 60]));
                    }
                }
            }
        }
        jpeg(&DynamicImage::ImageRgb8(card))
    }
}
