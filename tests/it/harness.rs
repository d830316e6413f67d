//! Test harness: [`TestRedis`] runs a real `redis-server` on a free loopback port (stopped on
//! drop), and [`Gateway`] runs restdis in-process on port 0 in front of it, with a small HTTP
//! client. Readiness is polled with deadlines; nothing sleeps for a fixed time.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use restdis::cli::Cli;
use restdis::config::Config;
use restdis::server::Server;
use serde_json::Value;

/// The full-access token every test gateway uses.
pub const TOKEN: &str = "test-token-full";
/// The read-only token every test gateway uses.
pub const RO_TOKEN: &str = "test-token-read-only";

/// Runs `openssl` with `args` in `dir` (certificates for TLS tests); panics when it fails.
pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private redis-server.
pub struct TestRedis {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    /// Serves TLS only (certificates in `dir`: ca.pem, server.pem, server.key).
    tls: bool,
    /// The server binary.
    bin: String,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_server_bin() -> String {
    std::env::var("RESTDIS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

impl TestRedis {
    /// Starts redis-server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir,
            tls: false,
            bin: redis_server_bin(),
        };
        redis.spawn();
        redis
    }

    /// Starts another server binary (Valkey, another Redis version) the same way.
    pub fn start_bin(bin: &str) -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            tls: false,
            bin: bin.to_string(),
        };
        redis.spawn();
        redis
    }

    /// Starts redis-server serving only TLS, with a fresh CA and a certificate for
    /// `localhost`/127.0.0.1 made with openssl; `ca_file()` is the CA to trust.
    pub fn start_tls() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| openssl(d, args);
        openssl(
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            ]
            .iter()
            .chain(&["-days", "1", "-subj", "/CN=restdis test CA"])
            .copied()
            .collect::<Vec<_>>(),
        );
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ]);
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir,
            tls: true,
            bin: redis_server_bin(),
        };
        redis.spawn();
        redis
    }

    /// The CA certificate of a TLS server.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let port = self.port.to_string();
        let tls_args: Vec<String> = if self.tls {
            let f = |n: &str| d.join(n).to_string_lossy().into_owned();
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.clone(),
                "--tls-cert-file".into(),
                f("server.pem"),
                "--tls-key-file".into(),
                f("server.key"),
                "--tls-ca-cert-file".into(),
                f("ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            let socket = d.join("redis.sock").to_string_lossy().into_owned();
            vec![
                "--port".into(),
                port,
                "--unixsocket".into(),
                socket,
                "--unixsocketperm".into(),
                "700".into(),
            ]
        };
        let child = Command::new(&self.bin)
            .args(&tls_args)
            .args(["--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `unix:///…/redis.sock`: the same server over its Unix socket (not for TLS servers).
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }

    /// Whether it is up: PING over plain TCP, or a TCP connect for a TLS server.
    fn answers(&self) -> bool {
        if self.tls {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        } else {
            self.try_query(&["PING"]).is_ok()
        }
    }

    /// Kills the server (a crash, as far as restdis can tell).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (data is gone).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stalls the whole server for `secs` seconds (`DEBUG SLEEP` from a direct connection) and
    /// returns once a PING no longer gets an answer; join the handle to wait for the end.
    pub fn stall(&self, secs: u32) -> std::thread::JoinHandle<()> {
        let url = self.url();
        let sleeper = std::thread::spawn(move || {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_connection().unwrap();
            let _: redis::Value = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(secs)
                .query(&mut conn)
                .unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.pings_within(Duration::from_millis(50)) {
            assert!(
                Instant::now() < deadline,
                "DEBUG SLEEP did not stall redis-server"
            );
        }
        sleeper
    }

    fn pings_within(&self, wait: Duration) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(wait));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut buf), Ok(n) if n > 0)
    }

    /// Runs one command over a direct connection (for set-up and checks).
    pub fn query(&self, args: &[&str]) -> redis::Value {
        self.try_query(args).unwrap()
    }

    fn try_query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// restdis running in-process, and a client for it.
pub struct Gateway {
    server: Option<Server>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin listener's URL.
    pub admin: String,
    /// A keep-alive HTTP client.
    pub http: reqwest::Client,
}

/// The flags every test gateway starts with, pointed at `redis`.
pub fn cli_for(redis: &TestRedis) -> Cli {
    cli_for_url(redis.url())
}

/// The flags every test gateway starts with, pointed at the Redis (or cluster) at `url`.
pub fn cli_for_url(url: String) -> Cli {
    Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        redis_url: Some(url),
        token: Some(TOKEN.into()),
        read_only_token: Some(RO_TOKEN.into()),
        ..Cli::default()
    }
}

/// `RESTDIS_TEST_WORKERS=N` runs every test gateway with N workers (`scripts/test` runs the
/// suite once more with 2).
pub fn test_workers() -> Option<String> {
    std::env::var("RESTDIS_TEST_WORKERS").ok()
}

impl Gateway {
    /// restdis with default settings in front of `redis`.
    pub async fn start(redis: &TestRedis) -> Self {
        Self::start_with(cli_for(redis)).await
    }

    /// restdis with the given flags; waits until a Redis connection is up.
    pub async fn start_with(mut cli: Cli) -> Self {
        if cli.worker_threads.is_none() {
            cli.worker_threads = test_workers();
        }
        let config = Config::resolve(&cli, &Default::default()).unwrap();
        let source = restdis::reload::Source {
            cli,
            env: Default::default(),
        };
        let server = Server::start_with(config, Some(source)).await.unwrap();
        for backend in &server.state.tenancy().backends {
            assert!(
                backend.wait_connected(Duration::from_secs(10)).await,
                "restdis did not connect to Redis"
            );
        }
        Self {
            url: format!("http://{}", server.api_addr),
            admin: format!("http://{}", server.admin_addr.unwrap()),
            server: Some(server),
            http: reqwest::Client::builder().build().unwrap(),
        }
    }

    /// The server's shared state (metering clock, backends).
    pub fn state(&self) -> &std::sync::Arc<restdis::state::AppState> {
        self.server.as_ref().map(|s| &s.state).unwrap()
    }

    /// The (first) backend.
    pub fn backend(&self) -> std::sync::Arc<restdis::backend::Backend> {
        self.state().tenancy().backends[0].clone()
    }

    /// Stops accepting and drains.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// A POST with the full token and a raw body.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A POST of JSON with a token; returns the status and the parsed body.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    /// One command via `POST /` with the full token.
    pub async fn cmd(&self, args: Value) -> (u16, Value) {
        self.post_as(TOKEN, "/", args).await
    }

    /// A `/pipeline` with the full token.
    pub async fn pipeline(&self, cmds: Value) -> (u16, Value) {
        self.post_as(TOKEN, "/pipeline", cmds).await
    }

    /// A `/multi-exec` with the full token.
    pub async fn multi(&self, cmds: Value) -> (u16, Value) {
        self.post_as(TOKEN, "/multi-exec", cmds).await
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }

    /// The value of the first metric line that starts with `prefix` (a name, or a name and
    /// labels), or 0 when there is none.
    pub async fn metric(&self, prefix: &str) -> f64 {
        metric_value(&self.metrics_text().await, prefix)
    }

    /// A GET with `_token` in the query.
    pub async fn get_path(&self, path_and_query: &str) -> (u16, Value) {
        let sep = if path_and_query.contains('?') { '&' } else { '?' };
        let url = format!("{}{path_and_query}{sep}_token={TOKEN}", self.url);
        status_json(self.http.get(url).send().await.unwrap()).await
    }
}

/// The value of the first line of Prometheus `text` that starts with `prefix`, or 0.
pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Status and JSON body of a response (panics, naming the body, if it is not JSON).
pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"));
    (status, json)
}

/// The restdis binary built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_restdis"))
}

/// A local webhook receiver (quota alerts): every request's `X-Restdis-Signature` and body,
/// answered 200.
pub async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk)
                        .await
                        .unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let sig = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-restdis-signature:"))
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    let _ = tx.send((sig, buf[end + 4..end + 4 + len].to_vec()));
                    let _ = tokio::io::AsyncWriteExt::write_all(
                        &mut sock,
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                    return;
                }
            });
        }
    });
    (url, rx)
}

/// A private Redis Cluster: 3 primaries and 3 replicas (`redis-server --cluster-enabled yes`,
/// `cluster-node-timeout` 1000 ms), made with `redis-cli --cluster create`, on free loopback
/// ports; every node is stopped on drop.
pub struct TestCluster {
    /// The nodes, primaries first as `redis-cli` assigned them.
    pub nodes: Vec<TestNode>,
    /// Where the nodes keep their files (removed on drop).
    _dir: tempfile::TempDir,
}

/// One node of a [`TestCluster`].
pub struct TestNode {
    /// Its port (its cluster bus is port + 10000).
    pub port: u16,
    child: Option<Child>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl TestNode {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends SIGKILL to the node (a crash) without reaping it (drop does).
    pub fn crash(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-9", &c.id().to_string()]).status();
        }
    }

    /// Kills the node with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs one command on the node directly.
    pub fn query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(format!("redis://{}", self.addr()))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// The text of a command's reply (bulk or status), or "" when it failed.
    pub fn text(&self, args: &[&str]) -> String {
        match self.query(args) {
            Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(redis::Value::SimpleString(s)) => s,
            Ok(redis::Value::Okay) => "OK".into(),
            Ok(redis::Value::VerbatimString { text, .. }) => text,
            _ => String::new(),
        }
    }

    /// Its node id.
    pub fn id(&self) -> String {
        self.text(&["CLUSTER", "MYID"])
    }

    /// Makes this replica its primary's primary with `CLUSTER FAILOVER` (graceful) and waits
    /// until it is. Redis aborts a manual failover whose replica does not catch up with the
    /// paused primary in time (likelier on a loaded machine), so it is asked up to 3 times,
    /// 10 s each; the attempts are printed.
    pub fn promote(&self) {
        for attempt in 1..=3 {
            assert_eq!(self.text(&["CLUSTER", "FAILOVER"]), "OK");
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if self.is_primary() {
                    if attempt > 1 {
                        println!("CLUSTER FAILOVER took {attempt} attempts");
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("CLUSTER FAILOVER did not promote the replica in 3 attempts");
    }

    /// Whether it serves as a primary now.
    pub fn is_primary(&self) -> bool {
        self.text(&["INFO", "replication"]).contains("role:master")
    }
}

/// A redis-server on loopback `port` without persistence, its files in `dir`, with `extra`
/// options.
fn spawn_node(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(redis_server_bin())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--dbfilename",
            &format!("dump-{port}.rdb"),
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed")
}

/// `restdis --check-config --token t --redis-url URL`, run as a process.
pub fn check_config(url: &str) -> std::process::Output {
    Command::new(binary())
        .args(["--check-config", "--token", "t", "--redis-url", url])
        .output()
        .unwrap()
}

/// A free loopback port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

impl TestCluster {
    /// Starts six nodes, creates the cluster, and waits until every node says
    /// `cluster_state:ok` and every replica's link to its primary is up.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_cluster_port();
            let conf = format!("nodes-{port}.conf");
            let child = spawn_node(
                port,
                dir.path(),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-config-file",
                    &conf,
                ],
            );
            nodes.push(TestNode {
                port,
                child: Some(child),
            });
        }
        let cluster = Self { nodes, _dir: dir };
        for node in &cluster.nodes {
            wait_for(Duration::from_secs(10), "a cluster node to start", || {
                node.query(&["PING"]).is_ok()
            });
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(node.addr());
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(out.status.success(), "redis-cli --cluster create failed: {out:?}");
        cluster.wait_healthy();
        cluster
    }

    /// Waits (bounded) until every live node says `cluster_state:ok`, agrees that each of
    /// the 3 primaries has a replica whose link is up.
    pub fn wait_healthy(&self) {
        wait_for(Duration::from_secs(30), "the cluster to be healthy", || {
            let live: Vec<&TestNode> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
            live.iter()
                .all(|n| n.text(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                && live
                    .iter()
                    .filter(|n| !n.is_primary())
                    .all(|n| n.text(&["INFO", "replication"]).contains("master_link_status:up"))
                && live.iter().filter(|n| n.is_primary()).count() == 3
        });
    }

    /// `redis+cluster://` with two seeds.
    pub fn url(&self) -> String {
        format!(
            "redis+cluster://{},{}",
            self.nodes[0].addr(),
            self.nodes[1].addr()
        )
    }

    /// The node now serving as primary for `slot`.
    pub fn primary_of(&self, slot: u16) -> &TestNode {
        let reply = self.nodes[0].query(&["CLUSTER", "SLOTS"]).unwrap();
        let redis::Value::Array(ranges) = reply else {
            panic!("CLUSTER SLOTS: {reply:?}")
        };
        for range in ranges {
            let redis::Value::Array(parts) = range else {
                continue;
            };
            let (redis::Value::Int(a), redis::Value::Int(b)) = (&parts[0], &parts[1]) else {
                continue;
            };
            if (*a..=*b).contains(&(slot as i64)) {
                let redis::Value::Array(node) = &parts[2] else {
                    continue;
                };
                let redis::Value::Int(port) = node[1] else {
                    continue;
                };
                return self.nodes.iter().find(|n| n.port as i64 == port).unwrap();
            }
        }
        panic!("no primary for slot {slot}");
    }

    /// The replica of `primary`.
    pub fn replica_of(&self, primary: &TestNode) -> &TestNode {
        let id = primary.id();
        self.nodes
            .iter()
            .find(|n| {
                n.child.is_some()
                    && n.text(&["CLUSTER", "NODES"])
                        .lines()
                        .any(|l| l.contains("myself") && l.contains("slave") && l.contains(&id))
            })
            .expect("the primary has no replica")
    }
}

/// Polls `ok` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The flags of a test gateway configured by `toml` (its tenants), written to a file in `dir`.
pub fn cli_for_toml(dir: &tempfile::TempDir, toml: &str) -> Cli {
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, toml).unwrap();
    Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(file),
        ..Default::default()
    }
}

/// The flags of a test gateway in front of a cluster.
pub fn cli_for_cluster(cluster: &TestCluster) -> Cli {
    cli_for_url(cluster.url())
}

/// A private Sentinel group: a primary, one replica and three sentinels
/// (`redis-server --sentinel`, `down-after-milliseconds` 1000) monitoring it as `mymaster`, on
/// free loopback ports; every process is stopped on drop.
pub struct TestSentinel {
    /// The data nodes: the primary first, then the replica (as started; a failover swaps
    /// their roles).
    pub data: Vec<TestNode>,
    /// The sentinels.
    pub sentinels: Vec<TestNode>,
    _dir: tempfile::TempDir,
}

impl TestSentinel {
    /// Starts the group and waits (bounded) until the replica is in sync and every sentinel
    /// knows the primary, the replica and the two other sentinels, with quorum reachable.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        let primary_port = free_port();
        for replica in [false, true] {
            let port = if replica { free_port() } else { primary_port };
            let primary = primary_port.to_string();
            let extra: &[&str] = if replica {
                &["--replicaof", "127.0.0.1", &primary]
            } else {
                &[]
            };
            data.push(TestNode {
                port,
                child: Some(spawn_node(port, dir.path(), extra)),
            });
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n\
                     sentinel parallel-syncs mymaster 1\n",
                    dir.path().display()
                ),
            )
            .unwrap();
            let child = Command::new(redis_server_bin())
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            sentinels.push(TestNode {
                port,
                child: Some(child),
            });
        }
        let group = Self {
            data,
            sentinels,
            _dir: dir,
        };
        wait_for(Duration::from_secs(30), "the sentinel group to be ready", || {
            group.data[1].text(&["INFO", "replication"]).contains("master_link_status:up")
                && group.sentinels.iter().all(|s| {
                    s.text(&["SENTINEL", "CKQUORUM", "mymaster"]).starts_with("OK 3 usable")
                        && matches!(s.query(&["SENTINEL", "REPLICAS", "mymaster"]), Ok(redis::Value::Array(r)) if !r.is_empty())
                })
        });
        group
    }

    /// `redis+sentinel://` with every sentinel.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| s.addr()).collect();
        format!("redis+sentinel://{}/mymaster", hosts.join(","))
    }

    /// Asks the first sentinel for `SENTINEL FAILOVER mymaster` until it accepts (a loaded
    /// machine can make it answer `NOGOODSLAVE` while its view of the replica is stale),
    /// within 20 s.
    pub fn failover(&self) {
        let mut last = String::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match self.sentinels[0].query(&["SENTINEL", "FAILOVER", "mymaster"]) {
                Ok(redis::Value::Okay) => return,
                other => last = format!("{other:?}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("SENTINEL FAILOVER was never accepted: {last}");
    }

    /// The primary's port as the first sentinel reports it.
    pub fn primary_port(&self) -> Option<u16> {
        match self.sentinels[0].query(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]) {
            Ok(redis::Value::Array(parts)) if parts.len() == 2 => match &parts[1] {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).parse().ok(),
                _ => None,
            },
            _ => None,
        }
    }
}
