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
    Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        redis_url: Some(redis.url()),
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
