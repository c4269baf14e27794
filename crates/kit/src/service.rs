//! Service start-up, written once. A service's `Application` is a [`Service`] (its gRPC
//! routes bound, with the background tasks that live as long as it serves) or, for the
//! gateway, an HTTP server; its `main` is [`main`], which reads the configuration, answers the
//! `healthcheck` subcommand, starts telemetry, fetches identity's keys and keeps them fresh,
//! builds the application, serves until SIGTERM and stops every task before it returns. A
//! binary's `main.rs` names its pieces in a [`Binary`] and hands it to [`main`].

use crate::{
    auth::Keys,
    config::{Env, load_or_exit},
    server::{bind, serve, shutdown_signal},
    tasks::Trigger,
    tls::{ServerTls, Settings as Tls},
};
use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};
use tokio::net::TcpListener;
use tonic::service::Routes;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A gRPC service bound and ready: its routes behind the auth layer, with health and
/// reflection for its service names, and its background tasks (sweepers, workers), which start
/// when it serves and are stopped and awaited when it stops.
pub struct Service {
    listener: TcpListener,
    tls: Option<ServerTls>,
    addr: SocketAddr,
    ops: TcpListener,
    ops_addr: SocketAddr,
    routes: Routes,
    names: &'static [&'static str],
    public_paths: &'static [&'static str],
    keys: Keys,
    stop: Trigger,
    draining: Option<Trigger>,
    tasks: Vec<Task>,
}

impl Service {
    /// Binds `addr` (port 0 gives a free one) for `routes`, whose gRPC service `names` health
    /// reports as SERVING, checking callers' tokens with `keys`, and `ops_addr` for the
    /// operators (`/metrics`, `/healthz`: [`crate::server::Parts::ops`]).
    pub async fn bind(
        addr: SocketAddr,
        ops_addr: SocketAddr,
        routes: Routes,
        names: &'static [&'static str],
        keys: Keys,
    ) -> std::io::Result<Self> {
        let (listener, addr) = bind(addr).await?;
        let (ops, ops_addr) = bind(ops_addr).await?;
        Ok(Self {
            listener,
            tls: None,
            addr,
            ops,
            ops_addr,
            routes,
            names,
            public_paths: &[],
            keys,
            stop: Trigger::default(),
            draining: None,
            tasks: Vec::new(),
        })
    }

    /// Serves TLS only, from the files `tls` names (plaintext without a certificate).
    pub fn tls(mut self, tls: &Tls) -> Result<Self, crate::tls::TlsError> {
        self.tls = tls.server()?;
        Ok(self)
    }

    /// RPC paths that need no token.
    pub fn public(mut self, paths: &'static [&'static str]) -> Self {
        self.public_paths = paths;
        self
    }

    /// Fires `trigger` when the service starts draining, before it waits for the calls in
    /// flight: what streams that would otherwise never end (a watch) listen for.
    pub fn draining(mut self, trigger: Trigger) -> Self {
        self.draining = Some(trigger);
        self
    }

    /// A task that runs while the service serves: `task` gets the signal that it must stop.
    pub fn task<Fut>(mut self, task: impl FnOnce(Stop) -> Fut) -> Self
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let running = task(Box::pin(self.stop.signal()));
        self.tasks.push(Box::pin(running));
        self
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The operators' address (`/metrics`, `/healthz`).
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    /// Serves until `shutdown`, drains the calls in flight, then stops the tasks and waits
    /// for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let tasks: Vec<_> = self.tasks.into_iter().map(tokio::spawn).collect();
        let draining = self.draining;
        let shutdown = async move {
            shutdown.await;
            if let Some(draining) = draining {
                draining.fire();
            }
        };
        let parts = crate::server::Parts {
            listener: self.listener,
            tls: self.tls,
            ops: self.ops,
            routes: self.routes,
            names: self.names,
            keys: self.keys,
            public_paths: self.public_paths,
        };
        let served = serve(parts, shutdown).await;
        self.stop.fire();
        for task in tasks {
            task.await?;
        }
        served?;
        Ok(())
    }
}

/// The signal a [`Service::task`] gets: resolves when the service stops.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How the `healthcheck` subcommand asks a running binary whether it is well.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// grpc.health.v1 says SERVING.
    Grpc,
    /// `GET` of this path over HTTP answers 200.
    Http(&'static str),
}

/// What [`main`] needs to know of a binary.
pub struct Binary<C, S> {
    /// The service's name, in telemetry and logs.
    pub name: &'static str,
    /// Its configuration, from the environment.
    pub config: fn(&mut Env) -> C,
    /// Where it listens.
    pub addr: fn(&C) -> SocketAddr,
    /// Its TLS (for the `healthcheck` subcommand's probe and its calls to identity).
    pub tls: fn(&C) -> Tls,
    /// Identity's URL, to fetch and refresh its keys from, and the service's own client
    /// there (for the revocation feed); `None` for identity itself.
    pub identity: fn(&C) -> Option<(String, crate::client::Credentials)>,
    /// How the `healthcheck` subcommand asks it.
    pub probe: Probe,
    /// Builds it, bound and ready to serve.
    pub start: S,
}

/// The `main` of a binary that learns its keys from identity: `examreg_kit::main!(crate_name,
/// "name")` (or with a [`Probe`] after the name), for a crate whose `Config` has `addr`,
/// `identity_url`, `tls` and `client` (its [`crate::client::Credentials`]) and whose
/// `Application::build(config, keys)` binds it. Identity, which has
/// its own keys, writes its [`Binary`] out.
#[macro_export]
macro_rules! main {
    ($krate:ident, $name:literal) => {
        $crate::main!($krate, $name, $crate::service::Probe::Grpc);
    };
    ($krate:ident, $name:literal, $probe:expr) => {
        fn main() -> ::anyhow::Result<()> {
            $crate::service::main($crate::service::Binary {
                name: $name,
                config: $krate::Config::from_env,
                addr: |config| config.addr,
                tls: |config| config.tls.clone(),
                identity: |config| Some((config.identity_url.clone(), config.client.clone())),
                probe: $probe,
                start: $krate::Application::build,
            })
        }
    };
}

/// A server bound and ready: where it listens, and serving until a signal.
pub trait Serve {
    fn local_addr(&self) -> SocketAddr;
    fn serve(self, shutdown: Stop) -> impl Future<Output = anyhow::Result<()>>;
}

impl Serve for Service {
    fn local_addr(&self) -> SocketAddr {
        self.addr()
    }

    fn serve(self, shutdown: Stop) -> impl Future<Output = anyhow::Result<()>> {
        self.run_until_stopped(shutdown)
    }
}

/// The `main` of every binary. `examreg-<name> healthcheck` asks the running one (on the
/// configured address) whether it is well and exits 0 or 1.
pub fn main<C, S, Fut, R>(binary: Binary<C, S>) -> anyhow::Result<()>
where
    S: FnOnce(C, Keys) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
    R: Serve,
{
    let config = load_or_exit(binary.config);
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let addr = (binary.addr)(&config);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let tls = (binary.tls)(&config);
        match runtime.block_on(healthcheck(addr, binary.probe, &tls)) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{addr}: unhealthy: {e}");
                std::process::exit(1);
            }
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(binary, config))
}

async fn run<C, S, Fut, R>(binary: Binary<C, S>, config: C) -> anyhow::Result<()>
where
    S: FnOnce(C, Keys) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
    R: Serve,
{
    let _telemetry = crate::telemetry::init(binary.name);
    let stop = Trigger::default();
    let (keys, refresher) = match (binary.identity)(&config) {
        Some((url, credentials)) => {
            let tls = (binary.tls)(&config);
            let (keys, refresher) = crate::client::synced_keys(&url, &tls, &credentials, &stop)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            (keys, Some(refresher))
        }
        None => (Keys::default(), None),
    };
    let running = (binary.start)(config, keys).await?;
    tracing::info!(addr = %running.local_addr(), "{} listening", binary.name);
    let served = running.serve(Box::pin(shutdown_signal())).await;
    stop.fire();
    if let Some(refresher) = refresher {
        refresher.await?;
    }
    served
}

/// Asks the binary listening on `addr` whether it is well (over TLS when it serves TLS).
pub async fn healthcheck(addr: SocketAddr, probe: Probe, tls: &Tls) -> Result<(), String> {
    match probe {
        Probe::Grpc => crate::channel::healthcheck(addr, tls).await,
        Probe::Http(path) => http_ok(addr, path).await,
    }
}

/// `GET path` over HTTP/1.1 answers 200 within two seconds.
async fn http_ok(addr: SocketAddr, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut head = [0_u8; 12];
        tcp.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .map_err(|_| "no answer within 2 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = String::from_utf8_lossy(&head[9..12]).into_owned();
    if status == "200" {
        Ok(())
    } else {
        Err(format!("{path} answered {status}"))
    }
}

/// A service's Postgres pool, sized by configuration (`<SERVICE>_DATABASE_POOL_SIZE`,
/// `_ACQUIRE_TIMEOUT_MS`, `_STATEMENT_TIMEOUT_MS`): each replica opens up to `size`
/// connections, so replicas × size must stay below the server's `max_connections` (or a
/// pooler's client limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub size: u32,
    /// A call waiting longer than this for a connection fails `unavailable` (postgres).
    pub acquire_timeout: Duration,
    /// Postgres cancels a statement running longer (zero: never); it fails `unavailable`.
    pub statement_timeout: Duration,
    /// A direct connection to Postgres (`<SERVICE>_DATABASE_DIRECT_URL`) for what needs a
    /// session of its own: the migrations' advisory lock and the `LISTEN`ers. Set it when the
    /// database URL goes through PgBouncer in transaction mode; unset, they use the pool.
    pub direct_url: Option<crate::config::Secret>,
    /// Connections the `LISTEN`ers hold for good.
    pub held: u32,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            size: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            direct_url: None,
            held: 0,
        }
    }
}

impl Pool {
    /// Reads `<prefix>_DATABASE_POOL_SIZE` (more than `held` without a direct URL, at most
    /// 1000), `<prefix>_DATABASE_ACQUIRE_TIMEOUT_MS` (at least 1),
    /// `<prefix>_DATABASE_STATEMENT_TIMEOUT_MS` (0 for none) and
    /// `<prefix>_DATABASE_DIRECT_URL`. `held` is how many connections the service's
    /// `LISTEN`ers keep for good (sqlx's `PgListener` holds a pooled one): on the direct URL
    /// when there is one, otherwise out of the pool.
    pub fn from_env(env: &mut crate::config::Env, prefix: &str, held: u32) -> Self {
        let defaults = Self::default();
        let direct_url = env.secret(&format!("{prefix}_DATABASE_DIRECT_URL"));
        let held_here = if direct_url.is_some() { 0 } else { held };
        let size_var = format!("{prefix}_DATABASE_POOL_SIZE");
        let size = env.parse(&size_var, defaults.size);
        if size <= held_here || size > 1000 {
            env.invalid(
                &size_var,
                format!(
                    "between {} and 1000 ({held_here} held by listeners, one at least for calls)",
                    held_here + 1
                ),
            );
        }
        let acquire_var = format!("{prefix}_DATABASE_ACQUIRE_TIMEOUT_MS");
        let acquire = env.parse(&acquire_var, defaults.acquire_timeout.as_millis() as u64);
        if acquire == 0 {
            env.invalid(&acquire_var, "at least 1 ms");
        }
        let statement = env.parse(
            &format!("{prefix}_DATABASE_STATEMENT_TIMEOUT_MS"),
            defaults.statement_timeout.as_millis() as u64,
        );
        Self {
            size: size.clamp(held_here + 1, 1000),
            acquire_timeout: Duration::from_millis(acquire.max(1)),
            statement_timeout: Duration::from_millis(statement),
            direct_url,
            held,
        }
    }
}

/// A service's Postgres: the pool its calls use, and the connections that need a session of
/// their own (the `LISTEN`ers): a small pool on the direct URL when one is configured, the
/// same pool otherwise.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone)]
pub struct Postgres {
    pub pool: sqlx::PgPool,
    pub sessions: sqlx::PgPool,
}

/// How long a pooled connection may have been idle and still be handed out without a ping.
/// sqlx pings every connection it hands out by default: a second round trip to Postgres for
/// every query made on the pool. A connection in use under load is never idle this long, so
/// only one that sat idle (and may have been dropped by a restart, a failover or a firewall
/// in between) is checked first; a connection that breaks in use fails its call
/// `unavailable`, which callers retry, and is not handed out again.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

#[cfg(feature = "postgres")]
fn needs_ping(idle_for: Duration) -> bool {
    idle_for >= PING_IF_IDLE_FOR
}

/// Connects and applies the service's migrations (under sqlx's session-level advisory lock,
/// so replicas starting together apply them once; over the direct URL when there is one,
/// since a transaction-mode pooler would lose the lock between statements). The statement
/// timeout is a startup parameter of each pooled connection (behind PgBouncer, set it on the
/// role instead: see docs/operations.md).
#[cfg(feature = "postgres")]
pub async fn postgres(
    url: &crate::config::Secret,
    migrations: &sqlx::migrate::Migrator,
    pool: Pool,
) -> anyhow::Result<Postgres> {
    use std::str::FromStr;
    let mut options = sqlx::postgres::PgConnectOptions::from_str(url.expose())?;
    if !pool.statement_timeout.is_zero() {
        options = options.options([(
            "statement_timeout",
            pool.statement_timeout.as_millis().to_string(),
        )]);
    }
    let calls = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool.size)
        .acquire_timeout(pool.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if needs_ping(meta.idle_for) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    let sessions = match &pool.direct_url {
        Some(direct) => {
            sqlx::postgres::PgPoolOptions::new()
                // The listeners' connections and one for the migrations.
                .max_connections(pool.held + 1)
                .acquire_timeout(pool.acquire_timeout)
                .connect_with(sqlx::postgres::PgConnectOptions::from_str(direct.expose())?)
                .await?
        }
        None => calls.clone(),
    };
    migrations.run(&sessions).await?;
    Ok(Postgres {
        pool: calls,
        sessions,
    })
}
