//! Configuration, through the real binary: precedence (flag > env > file > default), strict
//! validation, the example file, SRH drop-in variables and the dev default.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::harness::{binary, free_port, status_json, TestRedis};

/// A `Command` for the binary with no RESTDIS_/SRH_ variables inherited.
pub(crate) fn restdis() -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars() {
        if k.starts_with("RESTDIS_") || k.starts_with("SRH_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `--check-config` with `cmd`: the exit code and stdout + stderr.
pub(crate) fn check(cmd: &mut Command) -> (i32, String) {
    let out = cmd.arg("--check-config").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn precedence_flag_env_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("restdis.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:7001\"\ncommand_timeout = \"3s\"\n").unwrap();
    let (_, out) = check(
        restdis()
            .args(["--config", file.to_str().unwrap(), "--listen", "127.0.0.1:7003"])
            .env("RESTDIS_LISTEN", "127.0.0.1:7002"),
    );
    assert!(out.contains("listen: 127.0.0.1:7003"), "{out}");
    let (_, out) = check(
        restdis()
            .args(["--config", file.to_str().unwrap()])
            .env("RESTDIS_LISTEN", "127.0.0.1:7002"),
    );
    assert!(out.contains("listen: 127.0.0.1:7002"), "{out}");
    let (_, out) = check(restdis().env("RESTDIS_CONFIG", &file));
    assert!(
        out.contains("listen: 127.0.0.1:7001") && out.contains("command_timeout: 3s"),
        "{out}"
    );
    let (code, out) = check(&mut restdis());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("listen: 127.0.0.1:8079") && out.contains("command_timeout: 10s"),
        "{out}"
    );
}

#[test]
fn example_config_parses_and_is_complete() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/restdis.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    restdis::config::file::FileConfig::parse(&text).unwrap();
    let (code, out) = check(restdis().arg("--config").arg(&path));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_configuration_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\ncomand_timeout = \"1s\"\n").unwrap();
    let (code, out) = check(restdis().arg("--config").arg(&file));
    assert_eq!(code, 2);
    assert!(out.contains("comand_timeout"), "{out}");
    let (code, out) = check(restdis().args(["--command-timeout", "soon"]));
    assert_eq!(code, 2);
    assert!(out.contains("command_timeout"), "{out}");
    let (code, out) = check(restdis().env("RESTDIS_REDIS_ULR", "redis://x"));
    assert_eq!(code, 2);
    assert!(
        out.contains("RESTDIS_REDIS_ULR") && out.contains("RESTDIS_REDIS_URL"),
        "{out}"
    );
    let (code, out) = check(
        restdis()
            .env("SRH_MODE", "env")
            .env("SRH_CONNECTION_STRIN", "redis://x"),
    );
    assert_eq!(code, 2);
    assert!(out.contains("SRH_CONNECTION_STRIN"), "{out}");
    let (code, out) = check(restdis().args(["--listen", "0.0.0.0:8079"]));
    assert_eq!(code, 2);
    assert!(out.contains("without a token"), "{out}");
    let (code, _) = check(restdis().args(["--listen", "0.0.0.0:8079", "--token", "t"]));
    assert_eq!(code, 0);
    let (code, _) = check(restdis().args(["--redis-url", "rediss://example:6380"]));
    assert_eq!(code, 0);
    let (code, out) = check(restdis().args(["--redis-url", "redis://127.0.0.1:6379?protocol=resp3"]));
    assert_eq!(code, 2);
    assert!(out.contains("RESP2"), "{out}");
    let (code, out) = check(restdis().args(["--log", "restdis=loud"]));
    assert_eq!(code, 2);
    assert!(out.contains("log"), "{out}");
    let (code, out) = check(restdis().env("SRH_MODE", ""));
    assert_eq!(code, 2);
    assert!(out.contains("SRH_MODE is empty"), "{out}");
    // Scale-out URLs: a cluster has database 0 only; usage is not kept in a cluster.
    let (code, out) = check(restdis().args(["--token", "t", "--redis-url", "redis+cluster://h:1/2"]));
    assert_eq!(code, 2);
    assert!(out.contains("only database 0"), "{out}");
    std::fs::write(
        &file,
        "token = \"t\"\n[metering]\npersist = true\nredis_url = \"redis+cluster://127.0.0.1:1\"\n",
    )
    .unwrap();
    let (code, out) = check(restdis().arg("--config").arg(&file));
    assert_eq!(code, 2);
    assert!(out.contains("usage is kept in one Redis"), "{out}");
}

/// A running binary whose stdout lines are collected.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// The value of the first stdout line `KEY=value` (waits up to 15 s).
    fn value(&self, key: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(15))
                .expect("restdis printed nothing in time");
            if let Some(v) = line.strip_prefix(&format!("{key}=")) {
                return v.to_string();
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        self.stop()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    /// Every restdis a test started stops with it, passed or failed (SIGTERM, so a private
    /// redis-server it started stops too).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

async fn ping(url: &str, token: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/"))
        .bearer_auth(token)
        .body(r#"["PING"]"#)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

#[tokio::test]
async fn srh_env_mode_is_a_drop_in() {
    let redis = TestRedis::start();
    let port = free_port();
    let run = Running::spawn(
        restdis()
            .args(["--admin-listen", "off"])
            .env("SRH_MODE", "env")
            .env("SRH_TOKEN", "srh-token")
            .env("SRH_CONNECTION_STRING", redis.url())
            .env("SRH_PORT", port.to_string()),
    );
    let url = run.value("UPSTASH_REDIS_REST_URL");
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    assert_eq!(ping(&url, "srh-token").await, (200, json!({"result": "PONG"})));
    assert!(run.terminate().success());
}

#[tokio::test]
async fn srh_file_mode_reads_tokens_json() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("srh-config")).unwrap();
    let tokens = json!({"tok-a": {"srh_id": "a", "connection_string": redis.url(), "max_connections": 2}});
    std::fs::write(dir.path().join("srh-config/tokens.json"), tokens.to_string()).unwrap();
    let port = free_port();
    let run = Running::spawn(
        restdis()
            .current_dir(dir.path())
            .args(["--admin-listen", "off"])
            .env("SRH_MODE", "file")
            .env("SRH_PORT", port.to_string()),
    );
    let url = run.value("UPSTASH_REDIS_REST_URL");
    assert_eq!(ping(&url, "tok-a").await, (200, json!({"result": "PONG"})));
    assert_eq!(ping(&url, "other").await.0, 401);
    assert!(run.terminate().success());
}

#[tokio::test]
async fn dev_default_starts_and_stops_a_private_redis() {
    if restdis::devredis::answers("127.0.0.1:6379").await {
        eprintln!("SKIPPED: a Redis answers on 127.0.0.1:6379, so the dev default would use it");
        return;
    }
    let run = Running::spawn(restdis().args(["--listen", "127.0.0.1:0", "--admin-listen", "off"]));
    let url = run.value("UPSTASH_REDIS_REST_URL");
    let token = run.value("UPSTASH_REDIS_REST_TOKEN");
    assert_eq!(ping(&url, &token).await, (200, json!({"result": "PONG"})));
    let (_, info) = {
        let resp = reqwest::Client::new()
            .post(format!("{url}/"))
            .bearer_auth(&token)
            .body(r#"["CONFIG","GET","port"]"#)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    };
    let port: u16 = info["result"][1].as_str().unwrap().parse().unwrap();
    assert_ne!(port, 6379);
    assert!(run.terminate().success());
    // The private redis-server is gone with it.
    assert!(!restdis::devredis::answers(&format!("127.0.0.1:{port}")).await);
}

/// `rediss://` with certificate verification: the binary trusts the test CA through
/// SSL_CERT_FILE (read by rustls-native-certs), and refuses a server it cannot verify.
#[tokio::test]
async fn tls_to_redis_verifies_the_server() {
    let redis = TestRedis::start_tls();
    let url = format!("rediss://localhost:{}", redis.port);
    let serve = |redis_url: &str| {
        let mut cmd = restdis();
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--token",
            "t",
            "--redis-url",
            redis_url,
        ]);
        cmd
    };
    let trusted = Running::spawn(serve(&url).env("SSL_CERT_FILE", redis.ca_file()));
    let api = trusted.value("UPSTASH_REDIS_REST_URL");
    assert_eq!(ping(&api, "t").await, (200, json!({"result": "PONG"})));
    // Without the CA the connection is refused: requests get a JSON 503, never an unverified link.
    let untrusted = Running::spawn(&mut serve(&url));
    let api = untrusted.value("UPSTASH_REDIS_REST_URL");
    assert_eq!(ping(&api, "t").await.0, 503);
    // #insecure (development only) skips verification.
    let insecure = Running::spawn(&mut serve(&format!("{url}/#insecure")));
    let api = insecure.value("UPSTASH_REDIS_REST_URL");
    assert_eq!(ping(&api, "t").await, (200, json!({"result": "PONG"})));
}
