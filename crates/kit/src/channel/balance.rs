//! Calls spread across a service's replicas. A Kubernetes ClusterIP Service balances
//! connections, and a gRPC client holds one HTTP/2 connection for its life, so every call of
//! one gateway pod would go to one identity pod. A client here resolves the service's name (a
//! headless Service answers with every ready pod's address) and balances each call over the
//! addresses with tower's power of two choices (the less loaded of two picked at random),
//! through tonic's balanced channel.
//!
//! A discovery task keeps the set true: it resolves the name again every few seconds and at
//! once when a replica fails, and asks each replica's grpc.health.v1 every second. A replica
//! that does not answer SERVING (it stopped, or is draining: `server::serve` turns NOT_SERVING
//! on its shutdown signal and keeps serving a moment before it closes) leaves the set, and
//! comes back when it answers again; one that DNS no longer names leaves it too. The last
//! replica is never taken out, so that calls fail at once (`unavailable`) rather than wait
//! when every replica is down; and when the name does not resolve the client connects to it
//! as given, as a plain channel does.

use futures::future::BoxFuture;
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tonic::transport::{Channel, Endpoint, channel::Change};

/// Resolves a host and port to the addresses behind it.
pub type Resolve =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system's resolver (`getaddrinfo`, so `/etc/hosts` and the cluster's DNS).
pub fn dns() -> Resolve {
    Arc::new(|host: String, port: u16| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// How often the set is checked.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The name is resolved again this often (and at once after a replica failed its probe).
    pub resolve_every: Duration,
    /// Each replica's health is asked this often, each answer awaited this long.
    pub probe_every: Duration,
    pub probe_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            resolve_every: Duration::from_secs(5),
            probe_every: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// What the balancer knows an endpoint by: a resolved address, or the name as given while it
/// does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(SocketAddr),
    Name,
}

/// A channel to `url` whose calls are balanced over every address its host resolves to. A
/// URL whose host is an IP address gets a plain channel (one server, nothing to discover).
/// Spawns the discovery task: call it within a Tokio runtime. The task ends when the last
/// clone of the channel is dropped.
pub fn channel(
    url: &str,
    configure: super::Configure,
    resolve: Resolve,
    timing: Timing,
) -> Result<Channel, tonic::transport::Error> {
    let template = configure(Endpoint::from_shared(url.to_owned())?);
    let uri = template.uri().clone();
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    if host.parse::<IpAddr>().is_ok() || host.is_empty() {
        return Ok(template.connect_lazy());
    }
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let scheme = uri.scheme_str().unwrap_or("http").to_owned();
    let (channel, changes) = Channel::balance_channel::<Key>(64);
    let discovery = Discovery {
        name: url.to_owned(),
        host,
        port,
        scheme,
        configure,
        resolve,
        timing,
        changes,
        members: HashMap::new(),
        by_name: false,
    };
    tokio::spawn(discovery.run());
    Ok(channel)
}

struct Member {
    /// A connection of the task's own for the health probe.
    probe: Channel,
    /// Taking calls now.
    balanced: bool,
}

struct Discovery {
    /// The URL as configured, for the logs (a service's address, no personal data).
    name: String,
    host: String,
    port: u16,
    scheme: String,
    /// The client's settings (timeouts, keep-alive), applied to each replica's endpoint.
    configure: super::Configure,
    resolve: Resolve,
    timing: Timing,
    changes: tokio::sync::mpsc::Sender<Change<Key, Endpoint>>,
    members: HashMap<SocketAddr, Member>,
    /// The name as given is in the balancer (it did not resolve).
    by_name: bool,
}

impl Discovery {
    /// The endpoint for one address, with the template's settings.
    fn endpoint(&self, addr: SocketAddr) -> Option<Endpoint> {
        let endpoint = Endpoint::from_shared(format!("{}://{addr}", self.scheme)).ok()?;
        Some((self.configure)(endpoint))
    }

    async fn send(&self, change: Change<Key, Endpoint>) -> bool {
        self.changes.send(change).await.is_ok()
    }

    async fn run(mut self) {
        let mut next_resolve = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_resolve {
                if !self.refresh().await {
                    return;
                }
                next_resolve = tokio::time::Instant::now() + self.timing.resolve_every;
            }
            match self.probe().await {
                None => return,
                // A replica failed: the name may already say so.
                Some(true) => next_resolve = tokio::time::Instant::now(),
                Some(false) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(self.timing.probe_every) => {}
                _ = self.changes.closed() => return,
            }
        }
    }

    /// Resolves the name and brings the set in line (`false` once the channel is gone).
    async fn refresh(&mut self) -> bool {
        let resolved = (self.resolve)(self.host.clone(), self.port).await;
        let addrs: Vec<SocketAddr> = match resolved {
            Ok(addrs) if !addrs.is_empty() => addrs,
            Ok(_) | Err(_) => {
                // Keep what is known; with nothing known, let a connection resolve the name
                // itself, so calls fail at once while it does not resolve.
                if self.members.is_empty() && !self.by_name {
                    tracing::warn!(service = %self.name, "the service's name does not resolve");
                    let Ok(endpoint) = Endpoint::from_shared(self.name.clone()) else {
                        return true;
                    };
                    let endpoint = (self.configure)(endpoint);
                    if !self.send(Change::Insert(Key::Name, endpoint)).await {
                        return false;
                    }
                    self.by_name = true;
                }
                return true;
            }
        };
        let gone: Vec<SocketAddr> = self
            .members
            .keys()
            .filter(|a| !addrs.contains(a))
            .copied()
            .collect();
        for addr in addrs {
            if self.members.contains_key(&addr) {
                continue;
            }
            let Some(endpoint) = self.endpoint(addr) else {
                continue;
            };
            // A new replica takes calls at once; its probe takes it out if it is not ready.
            if !self
                .send(Change::Insert(Key::Addr(addr), endpoint.clone()))
                .await
            {
                return false;
            }
            tracing::info!(service = %self.name, %addr, "replica joins");
            self.members.insert(
                addr,
                Member {
                    probe: endpoint.connect_lazy(),
                    balanced: true,
                },
            );
        }
        for addr in gone {
            if let Some(member) = self.members.remove(&addr)
                && member.balanced
                && !self.send(Change::Remove(Key::Addr(addr))).await
            {
                return false;
            }
            tracing::info!(service = %self.name, %addr, "replica leaves (no longer resolved)");
        }
        if self.by_name && !self.members.is_empty() {
            if !self.send(Change::Remove(Key::Name)).await {
                return false;
            }
            self.by_name = false;
        }
        true
    }

    /// Asks every replica's health and moves each in or out of the balancer: `Some(true)` when
    /// one failed, `None` once the channel is gone.
    async fn probe(&mut self) -> Option<bool> {
        let timeout = self.timing.probe_timeout;
        let answers = futures::future::join_all(self.members.iter().map(|(addr, member)| {
            let channel = member.probe.clone();
            let addr = *addr;
            async move {
                let healthy = tokio::time::timeout(timeout, super::serving(channel))
                    .await
                    .is_ok_and(|answer| answer.is_ok());
                (addr, healthy)
            }
        }))
        .await;
        let mut failed = false;
        // Those leaving go last, so that the set is never emptied by this round.
        let mut ordered = answers;
        ordered.sort_by_key(|(_, healthy)| !healthy);
        for (addr, healthy) in ordered {
            let in_balancer = self.members.values().filter(|m| m.balanced).count();
            let Some(member) = self.members.get(&addr) else {
                continue;
            };
            match (member.balanced, healthy) {
                (false, true) => {
                    let Some(endpoint) = self.endpoint(addr) else {
                        continue;
                    };
                    if !self.send(Change::Insert(Key::Addr(addr), endpoint)).await {
                        return None;
                    }
                    tracing::info!(service = %self.name, %addr, "replica serves again");
                    if let Some(member) = self.members.get_mut(&addr) {
                        member.balanced = true;
                    }
                }
                (true, false) if in_balancer > 1 => {
                    if !self.send(Change::Remove(Key::Addr(addr))).await {
                        return None;
                    }
                    tracing::warn!(service = %self.name, %addr, "replica not serving: taken out");
                    if let Some(member) = self.members.get_mut(&addr) {
                        member.balanced = false;
                    }
                    failed = true;
                }
                (true, false) => failed = true,
                (true, true) | (false, false) => {}
            }
        }
        Some(failed)
    }
}
