//! The suite the gateway's end-to-end tests run: identity, verification, biometrics and
//! profile running for real on the local stack, and the gateway in front of them.
#![allow(dead_code, unreachable_pub)]

pub(crate) mod processes;

use examreg_kit::{auth::Keys, config::Secret, tokens::SigningKey};
use examreg_testkit as tk;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;
use std::{collections::HashMap, time::Duration};

pub(crate) const PASSWORD: &str = "Жасыл-алма-көктемде-7";
/// The secret of the suite's `operator` service client, which has [`STAFF_SCOPES`].
pub(crate) const OPERATOR_SECRET: &str = "operator-secret-for-tests-0123456789";
/// The person at the keyboard that `ctl` names for the `operator` client (a staff client).
pub(crate) const STAFF_PERSON: &str = "aigerim.s";
/// What the exam center's staff may do over the internal API.
pub(crate) const STAFF_SCOPES: [&str; 11] = [
    "accounts:lookup",
    "accounts:read",
    "registrations:read",
    "support:write",
    "audit:read",
    "stats:read",
    "profile:read",
    "biometrics:status",
    "biometrics:read",
    "review:write",
    "directory:admin",
];
/// The gateway's three ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Public,
    Admin,
    Ops,
}

/// Which port serves `path` (see `Suite::base_for`).
pub(crate) fn port_for(path: &str) -> Port {
    let bare = path.split('?').next().unwrap_or(path);
    if matches!(bare, "/healthz" | "/readyz" | "/metrics") {
        Port::Ops
    } else if bare.starts_with("/v1/admin/") || bare.starts_with("/docs") {
        Port::Admin
    } else {
        Port::Public
    }
}

pub(crate) const SECRET: &str = "gateway-secret-for-tests-0123456789";

pub(crate) struct Suite {
    /// The applicants' port.
    pub(crate) base: String,
    /// The operators' port (admin routes, the docs viewer).
    pub(crate) admin_base: String,
    /// The platform's port (probes, metrics).
    pub(crate) ops_base: String,
    pub(crate) http: reqwest::Client,
    /// Identity's signing key, to mint the tokens an operator's client would get.
    pub(crate) signing: SigningKey,
    /// Where each service keeps its data, to check what is left.
    pub(crate) identity_db: String,
    pub(crate) biometrics_db: String,
    pub(crate) profile_db: String,
    pub(crate) verification_prefix: String,
    pub(crate) gateway_prefix: String,
    pub(crate) s3: examreg_biometrics::objects::S3Config,
    /// Each service's gRPC URL (TLS).
    pub(crate) services: Vec<(&'static str, String)>,
    keys: Keys,
    running: tokio::sync::Mutex<HashMap<&'static str, Running>>,
    /// The relays between the gateway and each service, when [`Options::relays`].
    relays: tokio::sync::Mutex<HashMap<&'static str, tk::Relay>>,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

pub(crate) struct Options {
    pub(crate) flow_ttl: Duration,
    pub(crate) rate_limit: u32,
    /// Proxies of ours in front of the gateway (`GATEWAY_TRUSTED_PROXIES`).
    pub(crate) trusted_proxies: usize,
    /// The secret the gateway presents to identity.
    pub(crate) client_secret: &'static str,
    /// Where biometrics finds Garage (a relay to stop it).
    pub(crate) s3_endpoint: String,
    /// identity's argon2 bound: hashes at once, and waiting.
    pub(crate) hashing: (usize, usize),
    /// How long the gateway refuses new journeys after an `overloaded`.
    pub(crate) admission_pause: Duration,
    /// How long a hand-off link waits to be opened.
    pub(crate) handoff_ttl: Duration,
    /// Where verification sends mail (host:port): the mail catcher, or a test server in
    /// front of it.
    pub(crate) smtp: String,
    /// verification's code rules (TTL, cooldown, attempts, budgets), when not its defaults
    /// with a per-address budget too large to matter.
    pub(crate) codes: Option<examreg_verification::store::Limits>,
    /// The proof of work's `maxnumber` for an address with no pass lately.
    pub(crate) pow_base: u64,
    /// Where the gateway reads the agreement and the consent (`GATEWAY_TEXTS_DIR`).
    pub(crate) texts_dir: Option<std::path::PathBuf>,
    /// How long identity's access tokens live.
    pub(crate) access_ttl: Duration,
    /// Failed logins per address (or pass) at identity before it asks for a proof of work.
    pub(crate) ip_failure_budget: i32,
    /// The gateway reaches each service through a relay of its own, which a test can cut
    /// ([`Suite::cut`]) as a dying service or a broken network would.
    pub(crate) relays: bool,
    /// Where the docs viewer is served (`GATEWAY_DOCS`).
    pub(crate) docs: examreg_gateway::config::Docs,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            flow_ttl: Duration::from_secs(3600),
            rate_limit: 1000,
            trusted_proxies: 0,
            client_secret: SECRET,
            s3_endpoint: tk::s3_endpoint(),
            hashing: (2, 64),
            admission_pause: Duration::from_secs(1),
            handoff_ttl: Duration::from_secs(300),
            smtp: tk::smtp_addr(),
            codes: None,
            pow_base: 2_000,
            texts_dir: None,
            access_ttl: Duration::from_secs(900),
            ip_failure_budget: 100,
            relays: false,
            docs: examreg_gateway::config::Docs::Admin,
        }
    }
}

pub(crate) async fn suite_with(options: Options) -> Suite {
    let signing = SigningKey::generate();
    let proof = SigningKey::generate();
    let mut stops = Vec::new();

    let mut config = examreg_identity::Config::defaults();
    let identity_db = tk::fresh_database("gateway").await;
    config.database_url = Secret::new(identity_db.clone());
    config.signing_key = Some(signing.clone());
    (config.hash_concurrency, config.hash_queue) = options.hashing;
    config.access_ttl = options.access_ttl;
    config.throttle.ip_budget = options.ip_failure_budget;
    config.proof_keys = examreg_kit::tokens::KeySet::from_public_pems(&proof.public_pem()).unwrap();
    config.service_clients = vec![
        examreg_identity::ServiceClient {
            id: "gateway".into(),
            secret_sha256: hex::encode(sha2::Sha256::digest(SECRET.as_bytes())),
            scopes: [
                "accounts:create",
                "accounts:read",
                "accounts:recover",
                "sessions:create",
                "verification:send",
                "verification:confirm",
                "revocations:watch",
            ]
            .map(String::from)
            .to_vec(),
            staff: false,
        },
        // The staff's tools: every call names the person at the keyboard.
        examreg_identity::ServiceClient {
            id: "operator".into(),
            secret_sha256: hex::encode(sha2::Sha256::digest(OPERATOR_SECRET.as_bytes())),
            scopes: STAFF_SCOPES
                .iter()
                .chain(&["people:erase", "accounts:delete"])
                .map(|s| (*s).to_owned())
                .collect(),
            staff: true,
        },
    ];
    // Identity calls biometrics, profile and verification to reopen a registration or erase
    // a person: their addresses are chosen before identity starts.
    let (biometrics_addr, profile_addr) = (tk::free_addr(), tk::free_addr());
    let verification_addr = tk::free_addr();
    config.biometrics_url = format!("https://{biometrics_addr}");
    config.profile_url = format!("https://{profile_addr}");
    config.verification_url = format!("https://{verification_addr}");
    let mut running = HashMap::new();
    let keys = Keys::default();
    let identity_url = start(&mut running, ServiceConfig::Identity(config), &keys).await;

    let watcher = examreg_kit::client::Credentials {
        id: "gateway".into(),
        secret: Secret::new(SECRET),
    };
    tk::learn_keys(&identity_url, &keys, &watcher).await;

    let mut config = examreg_verification::Config::defaults();
    let verification_prefix = tk::unique_prefix("verification");
    config.addr = verification_addr;
    config.key_prefix = verification_prefix.clone();
    config.redis_url = Secret::new(tk::redis_url());
    config.smtp_url = Secret::new(format!("smtp://{}", options.smtp));
    config.outbox.retry_base = Duration::from_secs(1);
    config.code_key = Secret::new("test-code-key-0123456789abcdef0123456789");
    config.proof_key = Some(proof);
    config.limits.ip_hourly = 1000;
    if let Some(codes) = options.codes {
        config.limits = codes;
    }
    let verification_url = start(&mut running, ServiceConfig::Verification(config), &keys).await;

    let (s3_id, s3_secret) = tk::s3_credentials();
    let mut config = examreg_biometrics::Config::defaults();
    let biometrics_db = tk::fresh_database("gateway_bio").await;
    config.database_url = Secret::new(biometrics_db.clone());
    config.s3.prefix = tk::unique_prefix("captures").replace(':', "/");
    config.s3.endpoint = options.s3_endpoint;
    config.s3.access_key_id = s3_id;
    config.s3.secret_access_key = Secret::new(s3_secret);
    let s3 = config.s3.clone();
    config.addr = biometrics_addr;
    config.documents.model = tk::mrz_model();
    config.master_keys = Some(
        examreg_biometrics::envelope::MasterKeys::parse(
            "dev1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .unwrap(),
    );
    let biometrics_url = start(&mut running, ServiceConfig::Biometrics(config), &keys).await;

    let mut config = examreg_profile::Config::defaults();
    let profile_db = tk::fresh_database("gateway_profile").await;
    config.database_url = Secret::new(profile_db.clone());
    config.addr = profile_addr;
    config.identity_url = identity_url.clone();
    let profile_url = start(&mut running, ServiceConfig::Profile(config), &keys).await;

    let services = vec![
        ("identity", identity_url.clone()),
        ("verification", verification_url.clone()),
        ("biometrics", biometrics_url.clone()),
        ("profile", profile_url.clone()),
    ];
    let mut relays = HashMap::new();
    let on = options.relays;
    let identity_url = relayed(&mut relays, on, "identity", identity_url).await;
    let verification_url = relayed(&mut relays, on, "verification", verification_url).await;
    let biometrics_url = relayed(&mut relays, on, "biometrics", biometrics_url).await;
    let profile_url = relayed(&mut relays, on, "profile", profile_url).await;
    let mut config = examreg_gateway::Config::defaults();
    config.tls = tk::tls();
    config.biometrics_url = biometrics_url;
    config.profile_url = profile_url;
    let gateway_prefix = tk::unique_prefix("gateway");
    config.key_prefix = gateway_prefix.clone();
    config.redis_url = Secret::new(tk::redis_url());
    config.identity_url = identity_url;
    config.verification_url = verification_url;
    config.client.secret = Secret::new(options.client_secret);
    config.pow_key = Secret::new("test-pow-key-0123456789abcdef0123456789");
    config.pow_base = options.pow_base;
    config.flow_ttl = options.flow_ttl;
    config.cors_origins = vec!["https://abiturient.example.kz".into()];
    config.body_limit = 16 * 1024;
    config.rate_limit = options.rate_limit;
    config.trusted_proxies = options.trusted_proxies;
    config.admission_pause = options.admission_pause;
    config.handoff_ttl = options.handoff_ttl;
    config.texts_dir = options.texts_dir;
    config.docs = options.docs;
    let gateway = examreg_gateway::Application::build(config, keys.clone())
        .await
        .unwrap();
    let base = format!("http://{}", gateway.addr());
    let admin_base = format!("http://{}", gateway.admin_addr());
    let ops_base = format!("http://{}", gateway.ops_addr());
    let (stop, signal) = tk::stopper();
    stops.push(stop);
    tokio::spawn(gateway.run_until_stopped(signal));
    Suite {
        base,
        admin_base,
        ops_base,
        http: reqwest::Client::new(),
        signing,
        identity_db,
        biometrics_db,
        profile_db,
        verification_prefix,
        gateway_prefix,
        s3,
        services,
        keys,
        running: tokio::sync::Mutex::new(running),
        relays: tokio::sync::Mutex::new(relays),
        _stops: stops,
    }
}

/// Where the gateway reaches the service `name` at `url`: through a relay of its own (kept in
/// `relays`) when `on`.
async fn relayed(
    relays: &mut HashMap<&'static str, tk::Relay>,
    on: bool,
    name: &'static str,
    url: String,
) -> String {
    if !on {
        return url;
    }
    let mut relay = tk::Relay::down(url.trim_start_matches("https://")).await;
    relay.up().await;
    let through = format!("https://{}", relay.addr);
    relays.insert(name, relay);
    through
}

/// A service's configuration, kept to start it again on the same address.
#[derive(Clone)]
pub(crate) enum ServiceConfig {
    Identity(examreg_identity::Config),
    Verification(examreg_verification::Config),
    Biometrics(examreg_biometrics::Config),
    Profile(examreg_profile::Config),
}

pub(crate) struct Running {
    config: ServiceConfig,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a service (on the address of its config; port 0 the first time) and records it
/// under its name; returns its URL.
async fn start(
    running: &mut HashMap<&'static str, Running>,
    mut config: ServiceConfig,
    keys: &Keys,
) -> String {
    let (stop, signal) = tk::stopper();
    // Every connection of the suite is TLS, with the local stack's certificates.
    match &mut config {
        ServiceConfig::Identity(c) => c.tls = tk::tls(),
        ServiceConfig::Verification(c) => c.tls = tk::tls(),
        ServiceConfig::Biometrics(c) => c.tls = tk::tls(),
        ServiceConfig::Profile(c) => c.tls = tk::tls(),
    }
    let (name, addr, task) = match &mut config {
        ServiceConfig::Identity(c) => {
            let app = examreg_identity::Application::build(c.clone())
                .await
                .unwrap();
            (c.addr, c.ops_addr) = (app.addr(), app.ops_addr());
            let task = tokio::spawn(async move { app.run_until_stopped(signal).await.unwrap() });
            ("identity", c.addr, task)
        }
        ServiceConfig::Verification(c) => {
            let app = examreg_verification::Application::build(c.clone(), keys.clone())
                .await
                .unwrap();
            (c.addr, c.ops_addr) = (app.addr(), app.ops_addr());
            let task = tokio::spawn(async move { app.run_until_stopped(signal).await.unwrap() });
            ("verification", c.addr, task)
        }
        ServiceConfig::Biometrics(c) => {
            let app = examreg_biometrics::Application::build(c.clone(), keys.clone())
                .await
                .unwrap();
            (c.addr, c.ops_addr) = (app.addr(), app.ops_addr());
            let task = tokio::spawn(async move { app.run_until_stopped(signal).await.unwrap() });
            ("biometrics", c.addr, task)
        }
        ServiceConfig::Profile(c) => {
            let app = examreg_profile::Application::build(c.clone(), keys.clone())
                .await
                .unwrap();
            (c.addr, c.ops_addr) = (app.addr(), app.ops_addr());
            let task = tokio::spawn(async move { app.run_until_stopped(signal).await.unwrap() });
            ("profile", c.addr, task)
        }
    };
    running.insert(name, Running { config, stop, task });
    format!("https://{addr}")
}

impl Suite {
    /// Cuts every connection between the gateway and `name` (its relay stops, every call on
    /// the way is lost), and takes calls again after `down`.
    pub(crate) async fn cut(&self, name: &str, down: Duration) {
        let mut relays = self.relays.lock().await;
        let relay = relays.get_mut(name).expect("a suite with relays");
        relay.stop().await;
        tokio::time::sleep(down).await;
        relay.up().await;
    }

    /// Stops a service the way Kubernetes does (a shutdown signal: it drains in-flight calls
    /// and exits), then starts a new instance on the same address after `down` — a rolling
    /// restart of the only replica.
    pub(crate) async fn restart(&self, name: &str, down: Duration) {
        self.restart_with(name, down, |_| {}).await;
    }

    /// [`Suite::restart`] with a changed configuration (a new version rolled out).
    pub(crate) async fn restart_with(
        &self,
        name: &str,
        down: Duration,
        change: impl FnOnce(&mut ServiceConfig),
    ) {
        let mut config = self.stop(name).await;
        tokio::time::sleep(down).await;
        change(&mut config);
        self.start_again(config).await;
    }

    /// Stops a service the way Kubernetes does (its calls drained); its configuration, to
    /// start it again with [`Suite::start_again`].
    pub(crate) async fn stop(&self, name: &str) -> ServiceConfig {
        let old = self
            .running
            .lock()
            .await
            .remove(name)
            .expect("a service of the suite");
        let _ = old.stop.send(());
        old.task.await.expect("the service stopped cleanly");
        old.config
    }

    /// Starts a stopped service again, on its address.
    pub(crate) async fn start_again(&self, config: ServiceConfig) {
        start(&mut *self.running.lock().await, config, &self.keys).await;
    }
}

/// A client behind a shared address: the pass it earned, the challenges it solved and how
/// hard each was.
#[derive(Default)]
pub(crate) struct Device {
    pub(crate) pass: Option<String>,
    pub(crate) solved: u32,
    pub(crate) maxnumbers: Vec<u64>,
}

pub(crate) async fn suite() -> Suite {
    suite_with(Options::default()).await
}

/// Asserts that an answer is a refusal with this status and error code.
#[track_caller]
pub(crate) fn refusal(status: StatusCode, body: &Value, expected: u16, code: &str) {
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (expected, Some(code)),
        "{body}"
    );
}

pub(crate) fn valid_iin() -> String {
    tk::random_iin(examreg_domain::Sex::Male)
}

/// `method path` at the gateway `base`, with a JSON body (or none) and `headers`: the answer's
/// status, headers and JSON (null when it has none).
pub(crate) async fn call_at(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http.request(method, format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, json)
}

impl Suite {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        call_at(&self.http, self.base_for(path), method, path, body, headers).await
    }

    /// The gateway's port that serves `path`: the platform's for probes and metrics, the
    /// operators' for admin routes and the docs viewer, the applicants' for the rest.
    pub(crate) fn base_for(&self, path: &str) -> &str {
        match port_for(path) {
            Port::Ops => &self.ops_base,
            Port::Admin => &self.admin_base,
            Port::Public => &self.base,
        }
    }

    /// A call as a device behind a busy address makes it: with its pass if it earned one, and,
    /// when asked for a proof of work, solving the challenge and asking again. How many
    /// challenges it solved is counted in `device`.
    pub(crate) async fn call_solving(
        &self,
        device: &mut Device,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut solution: Option<String> = None;
        loop {
            let mut headers = Vec::new();
            if let Some(pass) = &device.pass {
                headers.push(("x-pow-pass", pass.as_str()));
            }
            if let Some(solution) = &solution {
                headers.push(("x-proof-of-work", solution.as_str()));
            }
            let (status, answer_headers, answer) = self
                .call(method.clone(), path, body.clone(), &headers)
                .await;
            if let Some(pass) = answer_headers.get("x-pow-pass") {
                device.pass = Some(pass.to_str().unwrap().to_owned());
            }
            if answer["error"]["code"] != "proof_of_work_required" {
                return (status, answer);
            }
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
            assert!(device.solved < 5, "asked again and again: {answer}");
            let challenge: examreg_gateway::pow::Challenge =
                serde_json::from_value(answer["error"]["proof_of_work"].clone()).unwrap();
            device.maxnumbers.push(challenge.maxnumber);
            solution =
                Some(examreg_gateway::pow::solve(&challenge).expect("a challenge has a solution"));
            device.solved += 1;
        }
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .call(reqwest::Method::POST, path, Some(body), &[])
            .await;
        (status, json)
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, json) = self.call(reqwest::Method::GET, path, None, &[]).await;
        (status, json)
    }

    /// Asserts that a call is refused with this status and error code.
    pub(crate) async fn refused(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        (status, code): (u16, &str),
    ) {
        let (got, _, answer) = self.call(method, path, Some(body), &[]).await;
        refusal(got, &answer, status, code);
    }

    /// A page's text (a `GET` that must answer).
    pub(crate) async fn text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base_for(path)))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// A password recovery by `login` through to `new_password`, with the code of the
    /// `nth_letter` to `email`; the flow's id.
    pub(crate) async fn recover(
        &self,
        login: &str,
        email: &str,
        nth_letter: usize,
        new_password: &str,
    ) -> String {
        let (status, recovery) = self.post("/v1/recovery", json!({"login": login})).await;
        assert_eq!(status, StatusCode::CREATED, "{recovery}");
        let flow = recovery["flow_id"].as_str().unwrap().to_owned();
        let code = tk::nth_code(email, nth_letter).await;
        let (status, body) = self
            .post(
                &format!("/v1/recovery/{flow}/verify"),
                json!({"code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let password = json!({"password": new_password, "password_confirmation": new_password});
        let (status, body) = self
            .post(&format!("/v1/recovery/{flow}/password"), password)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        flow
    }

    /// A call with the applicant's token, answers in English.
    pub(crate) async fn me(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bearer = format!("Bearer {token}");
        let (status, _, json) = self
            .call(
                method,
                path,
                body,
                &[("authorization", &bearer), ("accept-language", "en")],
            )
            .await;
        (status, json)
    }

    /// `POST /v1/me/registration/complete`.
    pub(crate) async fn complete(&self, token: &str) -> (StatusCode, Value) {
        self.me(
            reqwest::Method::POST,
            "/v1/me/registration/complete",
            token,
            None,
        )
        .await
    }

    /// An operator's token with the scopes an erasure needs: the gateway's route and
    /// identity's DeleteAccount (identity has every other service erase its part).
    pub(crate) fn eraser(&self) -> String {
        tk::service_token(
            &self.signing,
            "operator",
            &["people:erase", "accounts:delete"],
        )
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self.call(reqwest::Method::PUT, path, Some(body), &[]).await;
        (status, json)
    }

    pub(crate) async fn start(&self, citizenship: &str) -> String {
        let (status, terms) = self.get("/v1/terms/current").await;
        assert_eq!(status, StatusCode::OK);
        let (status, flow) = self
            .post("/v1/registrations", json!({"citizenship": citizenship, "terms_version": terms["version"], "terms_accepted": true}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{flow}");
        assert_eq!(flow["next_step"], "identifier");
        flow["flow_id"].as_str().unwrap().to_owned()
    }

    /// Runs identifier → email → code; returns the flow id, ready for the password.
    pub(crate) async fn prove_email(&self, iin: &str, email: &str, nth_letter: usize) -> String {
        let flow = self.start("KZ").await;
        self.prove_email_of(&flow, iin, email, nth_letter).await;
        flow
    }

    /// Runs identifier → email → code on a started `flow`.
    pub(crate) async fn prove_email_of(
        &self,
        flow: &str,
        iin: &str,
        email: &str,
        nth_letter: usize,
    ) {
        self.prove_email_with(flow, json!({"iin": iin}), email, nth_letter)
            .await;
    }

    /// [`Suite::prove_email_of`] with the identifier step's body (`{"iin": …}` or
    /// `{"passport_number": …}`).
    pub(crate) async fn prove_email_with(
        &self,
        flow: &str,
        identifier: Value,
        email: &str,
        nth_letter: usize,
    ) {
        let (status, body) = self
            .put(&format!("/v1/registrations/{flow}/identifier"), identifier)
            .await;
        assert_eq!(
            (status, body["next_step"].as_str()),
            (StatusCode::OK, Some("email")),
            "{body}"
        );
        let (status, body) = self
            .put(
                &format!("/v1/registrations/{flow}/email"),
                json!({"email": email}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["next_step"], "email_code");
        assert!(body["resend_available_at"].is_string());
        let code = tk::nth_code(email, nth_letter).await;
        let (status, body) = self
            .post(
                &format!("/v1/registrations/{flow}/email/verify"),
                json!({"code": code}),
            )
            .await;
        assert_eq!(
            (status, body["next_step"].as_str()),
            (StatusCode::OK, Some("password")),
            "{body}"
        );
    }

    pub(crate) async fn register(&self, iin: &str, email: &str) -> String {
        let flow = self.prove_email(iin, email, 1).await;
        self.set_password(&flow).await
    }

    /// The password step of a flow whose email is proven; returns the account id.
    pub(crate) async fn set_password(&self, flow: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/registrations/{flow}/password"),
                json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["next_step"], "login");
        body["account_id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn login(&self, login: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/sessions",
            json!({"login": login, "password": password}),
        )
        .await
    }
}

impl Suite {
    pub(crate) async fn photo(
        &self,
        token: &str,
        kind: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .put(format!("{}/v1/me/biometrics/{kind}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .header("accept-language", "en")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Suite {
    /// The onboarding's `document_check` once it is no longer `checking` (the document's zone
    /// is read in the background), its message in `lang`.
    pub(crate) async fn settled_document_check(&self, token: &str, lang: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let onboarding: Value = self
                .http
                .get(format!("{}/v1/me/onboarding", self.base))
                .bearer_auth(token)
                .header("accept-language", lang)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let check = onboarding["document_check"].clone();
            if check["status"] != "checking" || std::time::Instant::now() > deadline {
                return check;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) async fn onboarding(&self, token: &str) -> Value {
        self.http
            .get(format!("{}/v1/me/onboarding", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The account a token (an access or a capture token) is of.
    pub(crate) fn account_of(token: &str) -> uuid::Uuid {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("a JWT");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims");
        claims["sub"].as_str().unwrap().parse().unwrap()
    }

    /// A good photo of `kind` (`face`, `document-front`, `document-back`) for the holder of
    /// the account `token` is of: the suite's selfie, and a document that is theirs (an ID
    /// card's back with their IIN; a passport's page with their number and citizenship),
    /// valid until 2034.
    pub(crate) async fn good_photo(&self, token: &str, kind: &str) -> Vec<u8> {
        self.good_shot(token, kind, tk::cards::Shot::CLEAN).await
    }

    /// [`Suite::good_photo`], the document photographed as `shot` says.
    pub(crate) async fn good_shot(
        &self,
        token: &str,
        kind: &str,
        shot: tk::cards::Shot,
    ) -> Vec<u8> {
        let identity = sqlx::PgPool::connect(&self.identity_db).await.unwrap();
        let (login, login_kind, citizenship): (String, String, String) =
            sqlx::query_as("SELECT login, login_kind, citizenship FROM accounts WHERE id = $1")
                .bind(Self::account_of(token))
                .fetch_one(&identity)
                .await
                .unwrap();
        identity.close().await;
        match (kind, login_kind.as_str()) {
            ("face", _) => tk::photos::SELFIE.to_vec(),
            ("document-front", "passport") => tk::cards::passport_page(
                &login,
                examreg_domain::mrz::alpha3(&citizenship).unwrap(),
                "341231",
                shot,
            ),
            ("document-front", _) => tk::photos::id_card(true),
            ("document-back", _) => tk::cards::id_card_back(
                &examreg_domain::Iin::parse(&login).unwrap(),
                "341231",
                shot,
            ),
            (other, _) => panic!("no photo of {other}"),
        }
    }

    /// Uploads a good photo of each kind (`face`, `document-front`, `document-back`), each
    /// accepted.
    pub(crate) async fn photographed(&self, token: &str, kinds: &[&str]) {
        for &kind in kinds {
            let photo = self.good_photo(token, kind).await;
            let (status, body) = self.photo(token, kind, "image/jpeg", photo).await;
            assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        }
    }

    /// An applicant logged in with every step done but the completion, their document
    /// checked and verified; their access token.
    pub(crate) async fn ready_to_complete(&self) -> String {
        let token = self.logged_in().await;
        self.fill_in(&token).await;
        token
    }

    /// Does every step of a logged-in applicant but the completion: good photos of their own
    /// document, the consent, the name, the details (region KZ-55) and the education; then
    /// waits for the document check to verify the document.
    pub(crate) async fn fill_in(&self, token: &str) {
        self.fill_in_up_to_education(token).await;
        let (status, _, body) = self
            .call(
                reqwest::Method::PUT,
                "/v1/me/profile/education",
                Some(json!({"contingent_code": "bachelor", "institution_id": "toraighyrov"})),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
        self.verified_document(token).await;
    }

    /// The photos, the consent, the name and the details (region KZ-55) of a logged-in
    /// applicant, through the API: the education is next.
    pub(crate) async fn fill_in_up_to_education(&self, token: &str) {
        let auth = format!("Bearer {token}");
        let me = |method: reqwest::Method, path: &'static str, body: Value| {
            let auth = auth.clone();
            async move {
                let (status, _, body) = self
                    .call(
                        method,
                        path,
                        Some(body),
                        &[("authorization", auth.as_str())],
                    )
                    .await;
                assert!(status.is_success(), "{path}: {status} {body}");
                body
            }
        };
        self.photographed(token, &["face", "document-front", "document-back"])
            .await;
        me(
            reqwest::Method::POST,
            "/v1/me/biometrics/consent",
            json!({"consent_version": "2026-01", "accepted": true}),
        )
        .await;
        me(
            reqwest::Method::PUT,
            "/v1/me/profile/name",
            json!({"surname": "Нұрланов", "given_name": "Арман"}),
        )
        .await;
        let profile = me(reqwest::Method::GET, "/v1/me/profile", Value::Null).await;
        me(
            reqwest::Method::PUT,
            "/v1/me/profile/details",
            json!({"sex": "male", "birth_date": profile["suggested"]["birth_date"],
                   "region_code": "KZ-55", "mobile_phone": "8 777 123 45 67"}),
        )
        .await;
    }

    /// Waits for the check of the ID card's back, read in the background, to verify it. A back
    /// the reader could not read is photographed again, as its holder would be asked to (the
    /// reader misses a few cards in a hundred: the accuracy in docs/benchmark.md).
    pub(crate) async fn verified_document(&self, token: &str) {
        let mut check = self.settled_document_check(token, "en").await;
        for n in 1..=3 {
            if check["status"] != "retake" {
                break;
            }
            let back = self
                .good_shot(token, "document-back", tk::cards::Shot::nth(n))
                .await;
            let (status, body) = self.photo(token, "document-back", "image/jpeg", back).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            check = self.settled_document_check(token, "en").await;
        }
        assert_eq!(check["status"], "verified", "{check}");
    }

    /// Uploads the back of `iin`'s card (shot `first` of the series) and waits for its check:
    /// a back the reader missed is photographed again, as its holder would be asked to.
    pub(crate) async fn read_back(
        &self,
        token: &str,
        iin: &examreg_domain::Iin,
        first: u64,
        lang: &str,
    ) -> Value {
        let mut check = Value::Null;
        for n in first..first + 3 {
            let card = tk::cards::id_card_back(iin, "341231", tk::cards::Shot::nth(n));
            let (status, body) = self.photo(token, "document-back", "image/jpeg", card).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            check = self.settled_document_check(token, lang).await;
            if check["code"] != "document_mrz_unreadable" {
                break;
            }
        }
        check
    }

    /// A registered applicant's access token.
    pub(crate) async fn logged_in(&self) -> String {
        let iin = valid_iin();
        self.register(&iin, &tk::unique_email()).await;
        let (_, session) = self.login(&iin, PASSWORD).await;
        session["access_token"].as_str().unwrap().to_owned()
    }
}

/// The sum of a Prometheus counter's samples on a `/metrics` page whose labels contain all of
/// `labels` (e.g. `code="Ok"`).
pub(crate) fn counter(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Suite {
    /// A service's `/metrics` page, from its operators' port.
    pub(crate) async fn metrics_of(&self, service: &str) -> String {
        let addr = match &self
            .running
            .lock()
            .await
            .get(service)
            .expect("a service of the suite")
            .config
        {
            ServiceConfig::Identity(c) => c.ops_addr,
            ServiceConfig::Verification(c) => c.ops_addr,
            ServiceConfig::Biometrics(c) => c.ops_addr,
            ServiceConfig::Profile(c) => c.ops_addr,
        };
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Runs `examreg-ctl` against the suite as its `operator` client; what it printed.
pub(crate) async fn ctl(s: &Suite, args: &[&str]) -> anyhow::Result<String> {
    ctl_as(s, Some(STAFF_PERSON), args).await
}

/// `examreg-ctl` as the `operator` staff client, naming `person` (or nobody).
pub(crate) async fn ctl_as(
    s: &Suite,
    person: Option<&str>,
    args: &[&str],
) -> anyhow::Result<String> {
    let secret = std::env::temp_dir().join(format!("examreg-ctl-{}", uuid::Uuid::new_v4()));
    std::fs::write(&secret, OPERATOR_SECRET).unwrap();
    let url = |name: &str| {
        s.services
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    let mut line: Vec<String> = vec![
        "examreg-ctl".into(),
        "--identity".into(),
        url("identity"),
        "--profile".into(),
        url("profile"),
        "--biometrics".into(),
        url("biometrics"),
        "--verification".into(),
        url("verification"),
        "--client-id".into(),
        "operator".into(),
        "--secret-file".into(),
        secret.display().to_string(),
    ];
    // The suite's services speak mutual TLS.
    let tls = tk::tls();
    for (flag, path) in [
        ("--tls-ca-file", tls.ca),
        ("--tls-cert-file", tls.cert),
        ("--tls-key-file", tls.key),
    ] {
        line.extend([flag.into(), path.unwrap().display().to_string()]);
    }
    if let Some(person) = person {
        line.extend(["--on-behalf-of".to_owned(), person.to_owned()]);
    }
    line.extend(args.iter().map(|a| a.to_string()));
    let mut out = Vec::new();
    let ran = examreg_ctl::run(line, &mut out).await;
    std::fs::remove_file(&secret).unwrap();
    ran.map(|()| String::from_utf8(out).unwrap())
}

/// The exam center's texts, as an operator publishes them: the compiled-in 2026-01 files and
/// a new version of both documents.
pub(crate) fn published_texts() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("examreg-texts-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("texts");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    for (lang, title, text) in [
        (
            "kk",
            "Пайдаланушы келісімі",
            "Жаңа редакция: тестілеу орындары туралы.",
        ),
        (
            "ru",
            "Пользовательское соглашение",
            "Новая редакция: о местах тестирования.",
        ),
        (
            "en",
            "User agreement",
            "New wording: about the testing places.",
        ),
    ] {
        std::fs::write(
            dir.join(format!("terms.2026-12.{lang}.txt")),
            format!("{title}\n\n{text}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("biometric-consent.2026-12.{lang}.txt")),
            format!("{title} (биометрия)\n\n{text}\n"),
        )
        .unwrap();
    }
    dir
}

pub(crate) fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
