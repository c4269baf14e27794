//! `examreg-ctl`: the exam center staff's command line for the internal gRPC API. It trades a
//! service client's id and secret (read from a file) for a service token at identity, then
//! calls the service that owns the data: identity for accounts, the change feed, the support
//! actions and its audit log; profile for profiles and statistics; biometrics for the photos'
//! status, its access log and the document review queue (list, show, decide); every service
//! for what it deletes by time (`retention report`). Tables for people, `--json` for scripts.

use anyhow::Context;
use clap::{Parser, Subcommand};
use examreg_kit::{
    auth::{on_behalf_of, with_bearer},
    errors::reason_of,
};
use examreg_proto::{
    biometrics::v1::biometrics_service_client::BiometricsServiceClient,
    identity::v1::{self as id, identity_service_client::IdentityServiceClient},
    profile::v1::profile_service_client::ProfileServiceClient,
    retention::v1::retention_service_client::RetentionServiceClient,
};
use serde_json::Value;
use std::{io::Write, path::PathBuf};
use tonic::transport::Channel;

mod accounts;
mod person;
mod reports;
mod reviews;
mod show;

#[derive(Parser, Debug)]
#[command(
    name = "examreg-ctl",
    about = "The exam center's command line for examreg's internal API"
)]
pub struct Cli {
    /// identity's gRPC address.
    #[arg(
        long,
        env = "IDENTITY_URL",
        default_value = "https://127.0.0.1:50051",
        global = true
    )]
    identity: String,
    /// profile's gRPC address.
    #[arg(
        long,
        env = "PROFILE_URL",
        default_value = "https://127.0.0.1:50054",
        global = true
    )]
    profile: String,
    /// biometrics' gRPC address.
    #[arg(
        long,
        env = "BIOMETRICS_URL",
        default_value = "https://127.0.0.1:50053",
        global = true
    )]
    biometrics: String,
    /// verification's gRPC address.
    #[arg(
        long,
        env = "VERIFICATION_URL",
        default_value = "https://127.0.0.1:50052",
        global = true
    )]
    verification: String,
    /// The service client this is (it needs the scopes of the commands used).
    #[arg(
        long,
        env = "EXAMREG_CLIENT_ID",
        default_value = "operator",
        global = true
    )]
    client_id: String,
    /// A file holding the client's secret (never pass a secret on the command line).
    #[arg(long, env = "EXAMREG_CLIENT_SECRET_FILE", global = true)]
    secret_file: Option<PathBuf>,
    /// The person at the keyboard (a staff login): a staff client's calls must name them, and
    /// the audit logs record `client/person`.
    #[arg(long, env = "EXAMREG_ON_BEHALF_OF", global = true)]
    on_behalf_of: Option<String>,
    /// The CA bundle `https://` services are verified against.
    #[arg(long, env = "EXAMREG_TLS_CA_FILE", global = true)]
    tls_ca_file: Option<PathBuf>,
    /// The staff member's certificate (PEM), where the services ask their callers for one.
    #[arg(
        long,
        env = "EXAMREG_TLS_CERT_FILE",
        global = true,
        requires = "tls_key_file"
    )]
    tls_cert_file: Option<PathBuf>,
    /// Its private key.
    #[arg(
        long,
        env = "EXAMREG_TLS_KEY_FILE",
        global = true,
        requires = "tls_cert_file"
    )]
    tls_key_file: Option<PathBuf>,
    /// JSON instead of tables (one object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Accounts(accounts::Command),
    #[command(flatten)]
    Person(person::Command),
    #[command(flatten)]
    Reviews(reviews::Command),
    #[command(flatten)]
    Reports(reports::Command),
}

/// The clients and the token of one run.
pub(crate) struct Ctl {
    identity: IdentityServiceClient<Channel>,
    profile: ProfileServiceClient<Channel>,
    biometrics: BiometricsServiceClient<Channel>,
    /// Each service's retention evidence, in the order the report prints them.
    retention: Vec<RetentionServiceClient<Channel>>,
    client_id: String,
    secret: String,
    token: String,
    on_behalf_of: Option<String>,
    json: bool,
}

/// A gRPC failure said for a person: the code, the stable reason and the message.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    let reason = reason_of(&status).reason;
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    anyhow::anyhow!("{:?}{reason}: {}", status.code(), status.message())
}

impl Ctl {
    async fn connect(cli: &Cli) -> anyhow::Result<Self> {
        let path = cli
            .secret_file
            .as_ref()
            .context("--secret-file (or EXAMREG_CLIENT_SECRET_FILE) names the client's secret")?;
        let secret = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned();
        let tls = examreg_kit::tls::Settings {
            cert: cli.tls_cert_file.clone(),
            key: cli.tls_key_file.clone(),
            ca: cli.tls_ca_file.clone(),
            ..examreg_kit::tls::Settings::default()
        };
        let channel = |url: &str| {
            examreg_kit::channel::lazy(url, &tls)
                .with_context(|| format!("{url} is not a gRPC address"))
        };
        let mut ctl = Self {
            identity: IdentityServiceClient::new(channel(&cli.identity)?),
            profile: ProfileServiceClient::new(channel(&cli.profile)?),
            biometrics: BiometricsServiceClient::new(channel(&cli.biometrics)?),
            retention: [
                &cli.identity,
                &cli.verification,
                &cli.biometrics,
                &cli.profile,
            ]
            .into_iter()
            .map(|url| channel(url).map(RetentionServiceClient::new))
            .collect::<anyhow::Result<_>>()?,
            client_id: cli.client_id.clone(),
            secret,
            token: String::new(),
            on_behalf_of: cli.on_behalf_of.clone(),
            json: cli.json,
        };
        ctl.renew().await?;
        Ok(ctl)
    }

    /// A fresh service token (they live minutes: a long `watch` renews it on reconnecting).
    async fn renew(&mut self) -> anyhow::Result<()> {
        let request = id::IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.secret.clone(),
        };
        self.token = self
            .identity
            .issue_service_token(request)
            .await
            .map_err(refused)?
            .into_inner()
            .access_token;
        Ok(())
    }

    pub(crate) fn req<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = with_bearer(message, &self.token).map_err(refused)?;
        if let Some(person) = &self.on_behalf_of {
            on_behalf_of(&mut request, person).map_err(refused)?;
        }
        Ok(request)
    }

    pub(crate) async fn account(
        &mut self,
        account: &str,
        purpose: &str,
    ) -> anyhow::Result<id::Account> {
        let request = self.req(id::GetAccountRequest {
            account_id: account.to_owned(),
            purpose: purpose.to_owned(),
        })?;
        let answer = self.identity.get_account(request).await.map_err(refused)?;
        answer
            .into_inner()
            .account
            .context("identity answered without an account")
    }

    pub(crate) fn emit(&self, out: &mut dyn Write, value: &Value) -> anyhow::Result<()> {
        if self.json {
            writeln!(out, "{value}")?;
        } else {
            show::fields(out, value, "")?;
        }
        Ok(())
    }

    async fn run(&mut self, command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
        match command {
            Command::Accounts(command) => accounts::run(self, command, out).await,
            Command::Person(command) => person::run(self, command, out).await,
            Command::Reviews(command) => reviews::run(self, command, out).await,
            Command::Reports(command) => reports::run(self, command, out).await,
        }
    }
}

/// Runs the command line `args` (the program name first), writing to `out`.
pub async fn run<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let mut ctl = Ctl::connect(&cli).await?;
    ctl.run(cli.command, out).await
}
