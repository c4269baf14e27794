//! One Redis handle for a single server or a cluster, chosen by the URL.
//!
//! `redis://host:port[/db]` is one server behind a reconnecting [`ConnectionManager`];
//! `redis+cluster://[user:password@]host:port,host:port,...` is Redis Cluster, the listed
//! nodes being seeds from which the client learns the slot map (it follows `MOVED` and `ASK`
//! and reconnects by itself). Callers see one type, [`Redis`], which is a
//! [`ConnectionLike`], so commands, pipelines and scripts are written once. In a cluster a
//! pipeline or a script must touch one slot: every examreg key that is used with another
//! holds the same `{hash tag}`.

use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};
use std::time::Duration;

/// The scheme of a cluster URL, and of one whose nodes speak TLS.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
pub const CLUSTER_TLS_SCHEME: &str = "rediss+cluster://";

/// A connection to one Redis server or to a cluster; cheap to clone (clones share the
/// connections).
#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Redis::Single",
            Self::Cluster(_) => "Redis::Cluster",
        })
    }
}

/// Where a URL points: one server, or a cluster's seed nodes as `redis://` URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// Reads a `*_REDIS_URL`. A cluster URL has at least one `host:port`, no database (a cluster
/// has only database 0) and no query.
pub fn target(url: &str) -> anyhow::Result<Target> {
    let (rest, scheme) = match (
        url.strip_prefix(CLUSTER_SCHEME),
        url.strip_prefix(CLUSTER_TLS_SCHEME),
    ) {
        (Some(rest), _) => (rest, "redis"),
        (_, Some(rest)) => (rest, "rediss"),
        (None, None) => return Ok(Target::Single(url.to_owned())),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(
        path.is_empty() || path == "0",
        "a Redis Cluster has only database 0 (the URL asks for /{path})"
    );
    anyhow::ensure!(
        !authority.contains('?'),
        "a Redis Cluster URL takes no query"
    );
    let (auth, hosts) = match authority.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{auth}{h}"))
        .collect();
    anyhow::ensure!(
        !nodes.is_empty(),
        "a Redis Cluster URL lists at least one host:port"
    );
    Ok(Target::Cluster(nodes))
}

/// Connects to what `url` names. Each request waits at most `response` for its answer
/// (in a cluster, redirections and retries included), each connection attempt 3 s.
///
/// `rediss://` (and `rediss+cluster://`) is TLS, the server verified against the system's
/// roots, or the bundle `SSL_CERT_FILE` names (a managed Redis's CA, the local stack's).
pub async fn connect(url: &str, response: Duration) -> anyhow::Result<Redis> {
    const CONNECT: Duration = Duration::from_secs(3);
    crate::tls::install_crypto_provider();
    Ok(match target(url)? {
        Target::Single(url) => {
            let client = redis::Client::open(url.as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT))
                .set_response_timeout(Some(response));
            Redis::Single(ConnectionManager::new_with_config(client, config).await?)
        }
        Target::Cluster(nodes) => {
            let client = ClusterClientBuilder::new(nodes)
                .connection_timeout(CONNECT)
                .response_timeout(response)
                .build()?;
            Redis::Cluster(client.get_async_connection().await?)
        }
    })
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Checks that Redis answers. In a cluster `PING` goes to every primary and fails if one
/// does not answer.
pub async fn ping(redis: &Redis) -> RedisResult<()> {
    let _: Value = redis::cmd("PING").query_async(&mut redis.clone()).await?;
    Ok(())
}

/// Every key matching `pattern`: `SCAN` (which never blocks Redis the way `KEYS` does) over
/// the one server, or over every primary of a cluster (a `SCAN` sent to a cluster reaches
/// one node, and would miss the keys of the others).
pub async fn scan_match(redis: &Redis, pattern: &str) -> RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    match redis {
        Redis::Single(connection) => {
            let mut connection = connection.clone();
            let mut iter: redis::AsyncIter<'_, String> =
                redis::AsyncCommands::scan_match(&mut connection, pattern).await?;
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
        }
        Redis::Cluster(connection) => {
            let mut connection = connection.clone();
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut connection)
                .await?;
            for (host, port) in primaries(&nodes) {
                let mut cursor = 0u64;
                loop {
                    let mut scan = redis::cmd("SCAN");
                    scan.arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(500);
                    let answer = connection
                        .route_command(
                            scan,
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                host: host.clone(),
                                port,
                            }),
                        )
                        .await?;
                    let (next, page): (u64, Vec<String>) = redis::from_redis_value(answer)?;
                    keys.extend(page);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
        }
    }
    Ok(keys)
}

/// The primaries' addresses in a `CLUSTER NODES` answer (`id host:port@bus flags …`), but
/// those marked failed.
fn primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            let primary = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            let (host, port) = address.split('@').next()?.rsplit_once(':')?;
            primary.then(|| Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?)))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_is_one_server() {
        assert_eq!(
            target("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
    }

    #[test]
    fn a_cluster_url_lists_its_seeds_with_the_credentials() {
        assert_eq!(
            target("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7000/").unwrap(),
            Target::Cluster(vec![
                "redis://u:p@10.0.0.1:7000".into(),
                "redis://u:p@10.0.0.2:7000".into()
            ])
        );
        assert_eq!(
            target("redis+cluster://redis-0.redis:6379").unwrap(),
            Target::Cluster(vec!["redis://redis-0.redis:6379".into()])
        );
        assert_eq!(
            target("rediss+cluster://u:p@redis-0.redis:6379,redis-1.redis:6379").unwrap(),
            Target::Cluster(vec![
                "rediss://u:p@redis-0.redis:6379".into(),
                "rediss://u:p@redis-1.redis:6379".into()
            ])
        );
    }

    #[test]
    fn the_primaries_are_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
c3 10.0.0.3:7003@17003,redis-3 master,fail - 0 1 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 1 1 connected
";
        assert_eq!(
            primaries(nodes),
            [
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
    }

    #[test]
    fn a_cluster_url_without_hosts_or_with_a_database_is_refused() {
        assert!(target("redis+cluster://").is_err());
        assert!(target("redis+cluster://,").is_err());
        assert!(target("redis+cluster://h:1/3").is_err());
        assert!(target("redis+cluster://h:1?x=1").is_err());
    }
}
