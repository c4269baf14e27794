//! A Garage cluster of the test's own: three (or more) real `garage` nodes on loopback with
//! replication factor 3, joined and laid out through the admin API, with examreg's key and
//! bucket made by the same `deploy/garage-init.sh` the local stack and the Kubernetes Job run.
//! A node can be killed and started again (on its data, so it rejoins).

use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// One node: where it keeps its data and answers, and its process while it runs.
struct Node {
    config: PathBuf,
    s3: SocketAddr,
    admin: SocketAddr,
    rpc: SocketAddr,
    process: Option<Child>,
}

pub struct GarageCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    token: String,
    http: reqwest::Client,
    /// The key examreg uses, as (id, secret), allowed on [`GarageCluster::BUCKET`].
    pub key: (String, String),
}

impl GarageCluster {
    pub const BUCKET: &'static str = "examreg-biometrics";

    /// Starts `size` nodes with replication factor 3 and waits until the cluster is healthy.
    pub async fn start(size: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("examreg-garage-{}", uuid::Uuid::new_v4()));
        let secret = hex32();
        let token = hex32();
        let mut nodes = Vec::new();
        for i in 0..size {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let (s3, rpc, admin) = (crate::free_addr(), crate::free_addr(), crate::free_addr());
            let config = node_dir.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\n\
                     data_dir = \"{data}\"\n\
                     db_engine = \"sqlite\"\n\
                     replication_factor = 3\n\
                     rpc_bind_addr = \"{rpc}\"\n\
                     rpc_public_addr = \"{rpc}\"\n\
                     rpc_secret = \"{secret}\"\n\
                     [s3_api]\n\
                     s3_region = \"garage\"\n\
                     api_bind_addr = \"{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [admin]\n\
                     api_bind_addr = \"{admin}\"\n\
                     admin_token = \"{token}\"\n",
                    meta = node_dir.join("meta").display(),
                    data = node_dir.join("data").display(),
                ),
            )
            .unwrap();
            nodes.push(Node {
                config,
                s3,
                admin,
                rpc,
                process: None,
            });
        }
        let mut cluster = Self {
            dir,
            nodes,
            token,
            http: reqwest::Client::new(),
            key: (String::new(), String::new()),
        };
        for i in 0..size {
            cluster.start_node(i).await;
        }
        cluster.join().await;
        cluster.wait_healthy(size).await;
        cluster.key = cluster.init().await;
        cluster
    }

    /// Node `i`'s S3 endpoint.
    pub fn s3_endpoint(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].s3)
    }

    /// Kills node `i` (SIGKILL: no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.nodes[i].process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }

    /// Starts node `i` (again, on the data it had).
    pub async fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::create(node.config.with_file_name("garage.log")).unwrap();
        let process = Command::new(garage())
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("garage (installed by deploy/lib.sh) did not start: {e}"));
        node.process = Some(process);
        let admin = node.admin;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(admin).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "garage node {i} did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `connected` nodes are connected and every partition has all its copies.
    pub async fn wait_healthy(&self, connected: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(health) = self.admin(0, "GET", "GetClusterHealth", None).await
                && health["status"] == "healthy"
                && health["connectedNodes"].as_u64() == u64::try_from(connected).ok()
                && health["storageNodesUp"].as_u64() == u64::try_from(connected).ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the garage cluster did not become healthy with {connected} nodes"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The cluster's health as node `i` sees it (`GetClusterHealth`).
    pub async fn health(&self, i: usize) -> Value {
        self.admin(i, "GET", "GetClusterHealth", None)
            .await
            .unwrap()
    }

    async fn admin(
        &self,
        i: usize,
        method: &str,
        call: &str,
        body: Option<Value>,
    ) -> Result<Value, reqwest::Error> {
        let url = format!("http://{}/v2/{call}", self.nodes[i].admin);
        let request = match method {
            "POST" => self.http.post(url).json(&body.unwrap_or(Value::Null)),
            _ => self.http.get(url),
        };
        request
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    async fn node_id(&self, i: usize) -> String {
        let status = self
            .admin(i, "GET", "GetClusterStatus", None)
            .await
            .unwrap();
        let own = self.nodes[i].rpc.to_string();
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["addr"].as_str() == Some(own.as_str()))
            .and_then(|n| n["id"].as_str())
            .unwrap_or_else(|| panic!("node {i} does not know itself: {status}"))
            .to_owned()
    }

    /// Connects every node to the first and gives each a role, in its own zone.
    async fn join(&self) {
        let mut ids = Vec::new();
        for i in 0..self.nodes.len() {
            ids.push(self.node_id(i).await);
        }
        let peers: Vec<String> = ids
            .iter()
            .zip(&self.nodes)
            .skip(1)
            .map(|(id, node)| format!("{id}@{}", node.rpc))
            .collect();
        self.admin(0, "POST", "ConnectClusterNodes", Some(json!(peers)))
            .await
            .unwrap();
        let roles: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                json!({"id": id, "zone": format!("z{i}"), "capacity": 1_000_000_000u64, "tags": []})
            })
            .collect();
        self.admin(
            0,
            "POST",
            "UpdateClusterLayout",
            Some(json!({ "roles": roles })),
        )
        .await
        .unwrap();
        self.admin(0, "POST", "ApplyClusterLayout", Some(json!({"version": 1})))
            .await
            .unwrap();
    }

    /// examreg's key and bucket, by `deploy/garage-init.sh`.
    async fn init(&self) -> (String, String) {
        let key_id = format!("GK{}", &hex32()[..24]);
        let key = hex32();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/garage-init.sh");
        let output = tokio::task::spawn_blocking({
            let (admin, token, key_id, key) = (
                format!("http://{}", self.nodes[0].admin),
                self.token.clone(),
                key_id.clone(),
                key.clone(),
            );
            move || {
                Command::new("sh")
                    .arg(script)
                    .env("GARAGE_ADMIN_URL", admin)
                    .env("GARAGE_ADMIN_TOKEN", token)
                    .env("S3_KEY_ID", key_id)
                    .env("S3_KEY", key)
                    .env("S3_BUCKET", Self::BUCKET)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "garage-init.sh: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (key_id, key)
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn garage() -> String {
    std::env::var("EXAMREG_TEST_GARAGE").unwrap_or_else(|_| "garage".to_owned())
}

fn hex32() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
