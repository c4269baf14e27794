//! TLS for the suite's gRPC connections, from PEM files (`EXAMREG_TLS_*`, mounted from a
//! Secret that cert-manager keeps renewed).
//!
//! - A server with a certificate and key serves TLS only. It reads the files again every
//!   [`RELOAD_EVERY`] and new connections get a renewed certificate without a restart; a
//!   change that does not load (a key not yet written beside its certificate) is logged and
//!   the one in use kept. With a client CA it requires every caller to present a certificate
//!   that CA signed (mutual TLS).
//! - A client verifies an `https://` service against the CA bundle, by the URL's host name
//!   (each replica is dialled by address, its certificate checked for the service's name),
//!   and presents its own certificate when it has one. An `http://` URL is plaintext.

use crate::config::Env;
use futures::Stream;
use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        crypto::{CryptoProvider, ring},
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
    server::TlsStream,
};

/// How often a server reads its certificate files for a renewal.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// How long a caller has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a binary's TLS material is (every path optional: none is plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `EXAMREG_TLS_CERT_FILE`: the server's certificate chain, leaf first; also what it
    /// presents as a client where a server asks for one.
    pub cert: Option<PathBuf>,
    /// `EXAMREG_TLS_KEY_FILE`: its private key.
    pub key: Option<PathBuf>,
    /// `EXAMREG_TLS_CA_FILE`: the CA bundle `https://` services are verified against.
    pub ca: Option<PathBuf>,
    /// `EXAMREG_TLS_CLIENT_CA_FILE`: when set, callers must present a certificate this
    /// bundle signed.
    pub client_ca: Option<PathBuf>,
    /// How often the server reads its files for a renewal.
    pub reload_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            ca: None,
            client_ca: None,
            reload_every: RELOAD_EVERY,
        }
    }
}

/// Why TLS material does not load: the file and what is wrong with it (never its content).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct TlsError {
    path: String,
    why: String,
}

impl TlsError {
    fn new(path: &Path, why: impl std::fmt::Display) -> Self {
        Self {
            path: path.display().to_string(),
            why: why.to_string(),
        }
    }
}

impl Settings {
    /// `EXAMREG_TLS_CERT_FILE`, `_KEY_FILE`, `_CA_FILE` and `_CLIENT_CA_FILE`, each loaded
    /// once here so that a binary with unusable files refuses to start, naming them.
    pub fn from_env(env: &mut Env) -> Self {
        let path = |env: &Env, name: &str| {
            let value = env.string(name, "");
            (!value.is_empty()).then(|| PathBuf::from(value))
        };
        let settings = Self {
            cert: path(env, "EXAMREG_TLS_CERT_FILE"),
            key: path(env, "EXAMREG_TLS_KEY_FILE"),
            ca: path(env, "EXAMREG_TLS_CA_FILE"),
            client_ca: path(env, "EXAMREG_TLS_CLIENT_CA_FILE"),
            reload_every: RELOAD_EVERY,
        };
        if env.production() {
            // Every binary presents a certificate (servers, and callers where the services
            // ask for one) and verifies the others'.
            for (name, set) in [
                ("EXAMREG_TLS_CERT_FILE", settings.cert.is_some()),
                ("EXAMREG_TLS_KEY_FILE", settings.key.is_some()),
                ("EXAMREG_TLS_CA_FILE", settings.ca.is_some()),
            ] {
                if !set {
                    env.invalid(name, "required in production (TLS between the binaries)");
                }
            }
        }
        match (&settings.cert, &settings.key) {
            (Some(_), None) | (None, Some(_)) => env.invalid(
                "EXAMREG_TLS_CERT_FILE",
                "set together with EXAMREG_TLS_KEY_FILE, or neither",
            ),
            (Some(_), Some(_)) => {
                if let Err(e) = settings.server_config() {
                    env.invalid("EXAMREG_TLS_CERT_FILE", e.to_string());
                }
            }
            (None, None) => {
                if settings.client_ca.is_some() {
                    env.invalid(
                        "EXAMREG_TLS_CLIENT_CA_FILE",
                        "asks callers for certificates, which needs the server's own \
                         (EXAMREG_TLS_CERT_FILE)",
                    );
                }
            }
        }
        if let Some(ca) = &settings.ca
            && let Err(e) = roots(ca)
        {
            env.invalid("EXAMREG_TLS_CA_FILE", e.to_string());
        }
        settings
    }

    /// The server side, loaded; `None` without a certificate (plaintext).
    pub fn server(&self) -> Result<Option<ServerTls>, TlsError> {
        if self.cert.is_none() {
            return Ok(None);
        }
        let (config, files) = self.server_config()?;
        Ok(Some(ServerTls {
            settings: self.clone(),
            current: Arc::new(RwLock::new(Loaded { config, files })),
        }))
    }

    /// The server's rustls configuration and the bytes it was made of.
    fn server_config(&self) -> Result<(Arc<ServerConfig>, Vec<u8>), TlsError> {
        let (Some(cert_path), Some(key_path)) = (&self.cert, &self.key) else {
            return Err(TlsError::new(Path::new("EXAMREG_TLS_KEY_FILE"), "not set"));
        };
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let chain = certificates(cert_path, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::new(key_path, format!("no private key: {e}")))?;
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(cert_path, e))?;
        let mut files = [cert_pem, key_pem].concat();
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                files.extend(read(ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider)
                    .build()
                    .map_err(|e| TlsError::new(ca, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::new(cert_path, format!("with {}: {e}", key_path.display())))?;
        // gRPC, and HTTP/1.1 for the Prometheus scrape on the same port.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok((Arc::new(config), files))
    }

    /// The TLS of a client of `url`: `None` for `http://`; for `https://` the CA bundle
    /// (required), the client's own certificate when it has one, and the URL's host as the
    /// name the server's certificate must carry.
    pub fn client(&self, url: &str) -> Result<Option<tonic::transport::ClientTlsConfig>, TlsError> {
        let Some(rest) = url.strip_prefix("https://") else {
            return Ok(None);
        };
        let authority = rest.split(['/', ',']).next().unwrap_or_default();
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        }
        .trim_matches(['[', ']']);
        let Some(ca) = &self.ca else {
            return Err(TlsError::new(
                Path::new(url),
                "an https:// service needs the CA bundle to verify it (EXAMREG_TLS_CA_FILE)",
            ));
        };
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?))
            .domain_name(host);
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                read(cert)?,
                read(key)?,
            ));
        }
        Ok(Some(tls))
    }
}

/// The one crypto provider of the suite's TLS (rustls has two compiled in, by other crates).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Makes [`provider`] the process's default, for the libraries that build their TLS with it
/// (the Redis client); with two compiled in, rustls would not choose. Idempotent.
pub fn install_crypto_provider() {
    let _ = ring::default_provider().install_default();
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::new(path, e))
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::new(path, "no certificate"));
    }
    Ok(chain)
}

fn roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, &read(path)?)? {
        roots.add(cert).map_err(|e| TlsError::new(path, e))?;
    }
    Ok(Arc::new(roots))
}

struct Loaded {
    config: Arc<ServerConfig>,
    /// The files' bytes it was made of, to tell a renewal.
    files: Vec<u8>,
}

/// A server's TLS, renewed from its files while it serves.
#[derive(Clone)]
pub struct ServerTls {
    settings: Settings,
    current: Arc<RwLock<Loaded>>,
}

impl ServerTls {
    fn acceptor(&self) -> TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(current.config.clone())
    }

    /// Reads the files again; what changed and loads is served from now on.
    fn reload(&self) {
        let settings = &self.settings;
        // Parsed only when a file changed.
        let bytes = [&settings.cert, &settings.key, &settings.client_ca]
            .into_iter()
            .flatten()
            .map(|path| std::fs::read(path).unwrap_or_default())
            .collect::<Vec<_>>()
            .concat();
        if self.current.read().unwrap_or_else(|e| e.into_inner()).files == bytes {
            return;
        }
        match settings.server_config() {
            Ok((config, files)) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Loaded { config, files };
                tracing::info!("TLS certificate renewed from its files");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS files changed but do not load: the certificate in use is kept");
            }
        }
    }

    /// Reads the files every `reload_every` until dropped.
    async fn keep_fresh(self) {
        let mut every = tokio::time::interval(self.settings.reload_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            let this = self.clone();
            // Blocking file reads, off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || this.reload()).await;
        }
    }

    /// The connections `listener` accepts, each after its TLS handshake (made concurrently,
    /// within [`HANDSHAKE_TIMEOUT`]; a failed one is counted and dropped), with TCP_NODELAY.
    /// Stops accepting, and reloading, when the stream is dropped.
    pub fn incoming(
        self,
        listener: TcpListener,
    ) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let reloading = tokio::spawn(self.clone().keep_fresh());
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => break,
                };
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of descriptors, say: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = self.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("grpc_tls_handshake_failures_total").increment(1);
                            tracing::debug!(error = %e, "TLS handshake refused");
                        }
                        Err(_) => {
                            metrics::counter!("grpc_tls_handshake_failures_total").increment(1);
                        }
                    }
                });
            }
            reloading.abort();
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use std::{
        path::PathBuf,
        sync::{
            Arc,
            atomic::{AtomicBool, AtomicUsize, Ordering},
        },
        time::Duration,
    };

    /// A certificate authority of the test's own.
    struct Ca(CertifiedIssuer<'static, KeyPair>);

    impl Ca {
        fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
        }

        fn pem(&self) -> String {
            self.0.pem()
        }

        /// A certificate for localhost and 127.0.0.1, and its key (PEM).
        fn leaf(&self) -> (String, String) {
            let params =
                CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                    .unwrap();
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.0).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }

    /// A directory of the test's own for PEM files.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("examreg-tls-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A gRPC server (health only) serving `settings`' TLS on a free port; its address.
    async fn serve(settings: &Settings) -> std::net::SocketAddr {
        let any = "127.0.0.1:0".parse().unwrap();
        let (listener, addr) = crate::server::bind(any).await.unwrap();
        let (ops, _) = crate::server::bind(any).await.unwrap();
        let tls = settings.server().unwrap();
        assert!(tls.is_some(), "a certificate was given");
        let parts = crate::server::Parts {
            listener,
            tls,
            ops,
            routes: tonic::service::Routes::default(),
            names: &[],
            keys: crate::auth::Keys::default(),
            public_paths: &[],
        };
        tokio::spawn(crate::server::serve(parts, std::future::pending()));
        addr
    }

    /// Whether a new connection with `client`'s TLS to `addr` gets a SERVING answer.
    async fn call(
        addr: std::net::SocketAddr,
        scheme: &str,
        client: &Settings,
    ) -> Result<(), String> {
        let channel = crate::channel::lazy(&format!("{scheme}://{addr}"), client).unwrap();
        crate::channel::serving(channel).await
    }

    fn trusting(ca: PathBuf) -> Settings {
        Settings {
            ca: Some(ca),
            ..Settings::default()
        }
    }

    #[tokio::test]
    async fn a_caller_that_does_not_trust_the_ca_is_refused() {
        let (dir, ours, theirs) = (Dir::new(), Ca::new("examreg test CA"), Ca::new("other CA"));
        let (cert, key) = ours.leaf();
        let server = Settings {
            cert: Some(dir.write("tls.crt", &cert)),
            key: Some(dir.write("tls.key", &key)),
            ..Settings::default()
        };
        let addr = serve(&server).await;
        let ours = trusting(dir.write("ca.crt", &ours.pem()));
        let theirs = trusting(dir.write("other.crt", &theirs.pem()));

        call(addr, "https", &ours).await.unwrap();
        assert!(call(addr, "https", &theirs).await.is_err());
        assert!(
            call(addr, "http", &ours).await.is_err(),
            "a server with a certificate speaks TLS only"
        );
        // The probe asks it as localhost, a name its certificate carries.
        let probe = Settings {
            ca: ours.ca.clone(),
            ..server.clone()
        };
        crate::channel::healthcheck(addr, &probe).await.unwrap();
        let wrong = Settings {
            ca: theirs.ca.clone(),
            ..server
        };
        let refused = crate::channel::healthcheck(addr, &wrong).await.unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
    }

    #[tokio::test]
    async fn with_a_client_ca_a_caller_without_a_certificate_it_signed_is_refused() {
        let (dir, ours, theirs) = (Dir::new(), Ca::new("examreg test CA"), Ca::new("other CA"));
        let ca = dir.write("ca.crt", &ours.pem());
        let (cert, key) = ours.leaf();
        let server = Settings {
            cert: Some(dir.write("tls.crt", &cert)),
            key: Some(dir.write("tls.key", &key)),
            client_ca: Some(ca.clone()),
            ..Settings::default()
        };
        let addr = serve(&server).await;
        let with = |name: &str, (cert, key): (String, String)| Settings {
            cert: Some(dir.write(&format!("{name}.crt"), &cert)),
            key: Some(dir.write(&format!("{name}.key"), &key)),
            ..trusting(ca.clone())
        };

        call(addr, "https", &with("ours", ours.leaf()))
            .await
            .unwrap();
        assert!(call(addr, "https", &trusting(ca.clone())).await.is_err());
        assert!(
            call(addr, "https", &with("theirs", theirs.leaf()))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_renewed_certificate_is_served_without_a_failed_call() {
        let (dir, old, new) = (Dir::new(), Ca::new("old CA"), Ca::new("new CA"));
        let (cert, key) = old.leaf();
        let server = Settings {
            cert: Some(dir.write("tls.crt", &cert)),
            key: Some(dir.write("tls.key", &key)),
            reload_every: Duration::from_millis(50),
            ..Settings::default()
        };
        let addr = serve(&server).await;
        let both = trusting(dir.write("both.crt", &format!("{}{}", old.pem(), new.pem())));
        let only_new = trusting(dir.write("new.crt", &new.pem()));

        // Callers connecting anew all the while.
        let (calls, failed, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let callers = tokio::spawn({
            let (calls, failed, done) = (calls.clone(), failed.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    if call(addr, "https", &both).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        assert!(call(addr, "https", &only_new).await.is_err());
        tokio::time::sleep(Duration::from_millis(200)).await;

        // cert-manager's renewal, as a reader may see it: the certificate first, its key a
        // moment later (in between the pair does not load and the old one is kept).
        let (cert, key) = new.leaf();
        dir.write("tls.crt", &cert);
        tokio::time::sleep(Duration::from_millis(300)).await;
        dir.write("tls.key", &key);
        let mut renewed = false;
        for _ in 0..200 {
            if call(addr, "https", &only_new).await.is_ok() {
                renewed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        done.store(true, Ordering::Relaxed);
        callers.await.unwrap();

        assert!(renewed, "the renewed certificate is served");
        assert!(calls.load(Ordering::Relaxed) > 10);
        assert_eq!(failed.load(Ordering::Relaxed), 0, "no call failed");
    }

    #[test]
    fn unusable_files_stop_the_start_naming_the_variable() {
        let dir = Dir::new();
        let (cert, key) = Ca::new("examreg test CA").leaf();
        let (other_cert, _) = Ca::new("other CA").leaf();
        let cert = dir.write("tls.crt", &cert);
        let key = dir.write("tls.key", &key);
        let other = dir.write("other.crt", &other_cert);
        let missing = dir.0.join("missing.crt");
        let load = |vars: &[(&str, &PathBuf)]| {
            let mut env = crate::config::Env::from_map(
                vars.iter()
                    .map(|(name, path)| ((*name).to_owned(), path.display().to_string()))
                    .collect(),
            );
            let settings = Settings::from_env(&mut env);
            env.finish().map(|()| settings)
        };

        let fine = load(&[
            ("EXAMREG_TLS_CERT_FILE", &cert),
            ("EXAMREG_TLS_KEY_FILE", &key),
        ]);
        assert_eq!(fine.unwrap().cert.as_ref(), Some(&cert));
        for (vars, named) in [
            (
                vec![("EXAMREG_TLS_CERT_FILE", &cert)],
                "EXAMREG_TLS_CERT_FILE",
            ),
            (
                vec![
                    ("EXAMREG_TLS_CERT_FILE", &other),
                    ("EXAMREG_TLS_KEY_FILE", &key),
                ],
                "EXAMREG_TLS_CERT_FILE",
            ),
            (
                vec![
                    ("EXAMREG_TLS_CERT_FILE", &missing),
                    ("EXAMREG_TLS_KEY_FILE", &key),
                ],
                "EXAMREG_TLS_CERT_FILE",
            ),
            (vec![("EXAMREG_TLS_CA_FILE", &key)], "EXAMREG_TLS_CA_FILE"),
            (
                vec![("EXAMREG_TLS_CLIENT_CA_FILE", &cert)],
                "EXAMREG_TLS_CLIENT_CA_FILE",
            ),
        ] {
            let refused = load(&vars).unwrap_err();
            assert!(refused.names(named), "{named}: {refused}");
        }
    }
}
