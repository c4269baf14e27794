//! What the identity tests share: identity on a fresh database of the local stack's Postgres,
//! and a client with helpers.
#![allow(dead_code)]

use examreg_identity::{Application, Config, ServiceClient};
use examreg_kit::{
    auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, unix_now, with_bearer},
    config::Secret,
    errors::reason_of,
    tokens::{KeySet, SigningKey},
};
use examreg_proto::identity::v1::{
    self as pb, create_account_request::Identifier, identity_service_client::IdentityServiceClient,
};
use examreg_testkit as tk;
use sha2::Digest;
use std::time::Duration;
use tonic::{Code, Request, transport::Channel};
use uuid::Uuid;

pub(crate) const STRONG: &str = "Жасыл-алма-көктемде-7";
pub(crate) const GATEWAY_SECRET: &str = "gateway-secret-for-tests-0123456789";

pub(crate) struct TestApp {
    pub(crate) client: IdentityServiceClient<Channel>,
    pub(crate) key: SigningKey,
    pub(crate) proof_key: SigningKey,
    pub(crate) database: Secret,
    pub(crate) config: Config,
    pub(crate) serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

/// Identity on a fresh database, signing with `key` and taking proofs signed with `proof`.
pub(crate) async fn config(key: &SigningKey, proof: &SigningKey) -> Config {
    let mut config = Config::defaults();
    config.tls = tk::tls();
    config.database_url = Secret::new(tk::fresh_database("identity").await);
    config.signing_key = Some(key.clone());
    config.proof_keys = KeySet::from_signing_keys([proof]);
    config
}

pub(crate) async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// Identity with its test configuration changed by `adjust`.
pub(crate) async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let key = SigningKey::generate();
    let proof_key = SigningKey::generate();
    let mut config = config(&key, &proof_key).await;
    config.service_clients = vec![ServiceClient {
        id: "gateway".into(),
        secret_sha256: hex::encode(sha2::Sha256::digest(GATEWAY_SECRET.as_bytes())),
        scopes: vec![
            "accounts:create".into(),
            "sessions:create".into(),
            "accounts:recover".into(),
        ],
        staff: false,
    }];
    adjust(&mut config);
    start(config, key, proof_key).await
}

async fn start(mut config: Config, key: SigningKey, proof_key: SigningKey) -> TestApp {
    let database = config.database_url.clone();
    let app = Application::build(config.clone()).await.unwrap();
    let addr = app.addr();
    config.addr = addr;
    let (stop, stopped) = tk::stopper();
    let serving = tokio::spawn(app.run_until_stopped(stopped));
    TestApp {
        database,
        client: IdentityServiceClient::new(
            examreg_kit::channel::lazy(&format!("https://{addr}"), &tk::tls()).unwrap(),
        ),
        key,
        proof_key,
        config,
        serving,
        _stop: stop,
    }
}

impl TestApp {
    /// Another replica of this identity: the same database, keys and configuration, its own
    /// port.
    pub(crate) async fn replica(&self) -> TestApp {
        let mut config = self.config.clone();
        config.addr = "127.0.0.1:0".parse().unwrap();
        start(config, self.key.clone(), self.proof_key.clone()).await
    }

    /// The address this replica serves on.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.config.addr
    }

    /// Stops this identity (its calls drained) and starts another on the same database and
    /// keys, with its configuration changed by `adjust`: a restart.
    pub(crate) async fn restart(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let Self {
            mut config,
            key,
            proof_key,
            serving,
            _stop,
            ..
        } = self;
        drop(_stop);
        serving.await.unwrap().unwrap();
        config.addr = "127.0.0.1:0".parse().unwrap();
        adjust(&mut config);
        start(config, key, proof_key).await
    }
}

pub(crate) fn valid_iin() -> String {
    tk::random_iin(examreg_domain::Sex::Female)
}

impl TestApp {
    pub(crate) fn req<T>(&self, message: T) -> Request<T> {
        let token = tk::service_token(
            &self.key,
            "gateway",
            &[
                "accounts:create",
                "sessions:create",
                "accounts:recover",
                "accounts:read",
            ],
        );
        with_bearer(message, &token).unwrap()
    }

    pub(crate) fn proof(&self, email: &str, purpose: &str) -> String {
        self.proof_key.sign(&ProofClaims {
            iss: PROOF_ISSUER.into(),
            aud: PROOF_AUDIENCE.into(),
            sub: email.into(),
            purpose: purpose.into(),
            jti: Uuid::new_v4().to_string(),
            iat: unix_now(),
            exp: unix_now() + 600,
        })
    }

    pub(crate) fn account(&self, iin: &str, email: &str) -> pb::CreateAccountRequest {
        pb::CreateAccountRequest {
            citizenship: "KZ".into(),
            identifier: Some(Identifier::Iin(iin.into())),
            email: email.into(),
            // verification signs the normalized (lower-case) email.
            email_proof: self.proof(&email.to_lowercase(), "registration"),
            password: STRONG.into(),
            terms: Some(pb::TermsAcceptance {
                version: "2026-01".into(),
                sha256: "45777c14d90fa79dc6ce71ceb6f81cced62c929c472199547cfd939a54e954c6".into(),
                language: "ru".into(),
                accepted_at: None,
                client_ip: "127.0.0.1".into(),
                user_agent: "tests".into(),
            }),
        }
    }

    pub(crate) async fn create(
        &self,
        request: pb::CreateAccountRequest,
    ) -> Result<String, tonic::Status> {
        Ok(self
            .client
            .clone()
            .create_account(self.req(request))
            .await?
            .into_inner()
            .account_id)
    }

    /// A service token for the gateway's client id, with this secret.
    pub(crate) async fn issue_service_token(
        &self,
        secret: &str,
    ) -> Result<pb::IssueServiceTokenResponse, tonic::Status> {
        let request = pb::IssueServiceTokenRequest {
            client_id: "gateway".into(),
            client_secret: secret.into(),
        };
        let answer = self.client.clone().issue_service_token(request).await?;
        Ok(answer.into_inner())
    }

    /// Why identity refuses to create this account (the reason code).
    pub(crate) async fn refusal(&self, request: pb::CreateAccountRequest) -> String {
        reason(&self.create(request).await.unwrap_err())
    }

    /// A new account with a fresh IIN and email, and the password `STRONG`; its IIN.
    pub(crate) async fn registered(&self) -> String {
        let iin = valid_iin();
        self.create(self.account(&iin, &tk::unique_email()))
            .await
            .unwrap();
        iin
    }

    pub(crate) async fn login(
        &self,
        login: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        self.login_from(login, password, "10.1.2.3").await
    }

    pub(crate) async fn login_from(
        &self,
        login: &str,
        password: &str,
        ip: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        Ok(self
            .client
            .clone()
            .login(self.req(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
                client_ip: ip.into(),
                user_agent: "tests".into(),
                ..Default::default()
            }))
            .await?
            .into_inner())
    }

    pub(crate) async fn refresh(&self, token: &str) -> Result<pb::TokenPair, tonic::Status> {
        Ok(self
            .client
            .clone()
            .refresh_session(self.req(pb::RefreshSessionRequest {
                refresh_token: token.into(),
            }))
            .await?
            .into_inner()
            .tokens
            .unwrap())
    }
}

pub(crate) fn reason(status: &tonic::Status) -> String {
    reason_of(status).reason
}

impl TestApp {
    /// Asserts that identity refuses `access_token` within a second from now.
    pub(crate) async fn refused_within_a_second(&self, access_token: &str) {
        let ended = std::time::Instant::now();
        loop {
            let answer = self
                .client
                .clone()
                .get_account(with_bearer(pb::GetAccountRequest::default(), access_token).unwrap())
                .await;
            match answer {
                Err(status) if status.code() == Code::Unauthenticated => return,
                Ok(_) => assert!(ended.elapsed() < Duration::from_secs(1), "still accepted"),
                Err(status) => panic!("{status:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl TestApp {
    pub(crate) async fn create_with(
        &self,
        token: &str,
        request: pb::CreateAccountRequest,
    ) -> Result<String, tonic::Status> {
        Ok(self
            .client
            .clone()
            .create_account(with_bearer(request, token).unwrap())
            .await?
            .into_inner()
            .account_id)
    }
}
