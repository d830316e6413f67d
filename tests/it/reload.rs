//! Live reload of the configuration file (`POST /reload` and SIGHUP): tokens rotated under
//! load with no failed request, a tenant moved to another Redis with a request in flight on the
//! old one, caps changed with counts kept, an invalid file changing nothing, and settings that
//! need a restart named.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use restdis::cli::Cli;
use serde_json::{json, Value};

use crate::harness::{binary, status_json, Gateway, TestRedis};

/// A configuration file with one tenant, `acme`, on `redis_url` with these tokens.
fn tenant_file(redis_url: &str, tokens: &[&str], extra: &str) -> String {
    let tokens: Vec<String> = tokens.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "redis_url = {redis_url:?}\n\n[tenants.acme]\ntokens = [{}]\n{extra}\n",
        tokens.join(", ")
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

async fn start(path: &Path) -> Gateway {
    Gateway::start_with(Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(path.to_path_buf()),
        ..Cli::default()
    })
    .await
}

async fn reload(gw: &Gateway) -> (u16, Value) {
    status_json(gw.http.post(format!("{}/reload", gw.admin)).send().await.unwrap()).await
}

/// 16 clients INCR one counter the whole time; the token is rotated (old and new valid, clients
/// move to the new one, old removed). Not one request fails, and the counter equals the
/// acknowledged increments.
#[tokio::test]
async fn a_token_is_rotated_under_load_with_no_failed_request() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    write(&path, &tenant_file(&redis.url(), &["old-token"], ""));
    let gw = Arc::new(start(&path).await);
    let use_new = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (gw, use_new, stop, ok, failed) = (
            gw.clone(),
            use_new.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let token = if use_new.load(Ordering::Acquire) {
                    "new-token"
                } else {
                    "old-token"
                };
                match gw.post_as(token, "/", json!(["INCR", "rotations"])).await {
                    (200, v) if v["result"].is_i64() => ok.fetch_add(1, Ordering::Relaxed),
                    (status, v) => {
                        eprintln!("failed: {status} {v}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let progress = |n: u64| {
        let ok = ok.clone();
        async move {
            let target = ok.load(Ordering::Relaxed) + n;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while ok.load(Ordering::Relaxed) < target && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    progress(200).await;
    write(&path, &tenant_file(&redis.url(), &["old-token", "new-token"], ""));
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_added"], 1, "{body}");
    assert_eq!(
        body["backends_started"], 0,
        "a token change opens no connection: {body}"
    );
    progress(200).await;
    use_new.store(true, Ordering::Release);
    progress(200).await;
    write(&path, &tenant_file(&redis.url(), &["new-token"], ""));
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_removed"], 1, "{body}");
    progress(200).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed across the rotation"
    );
    let acknowledged = ok.load(Ordering::Relaxed);
    assert!(acknowledged >= 800);
    let (_, v) = gw.post_as("new-token", "/", json!(["GET", "rotations"])).await;
    assert_eq!(v["result"], json!(acknowledged.to_string()));
    // The removed token is refused from the next request on.
    assert_eq!(gw.post_as("old-token", "/", json!(["PING"])).await.0, 401);
    assert_eq!(
        gw.metric("restdis_config_reloads_total{result=\"ok\"}").await,
        2.0
    );
}

/// A tenant moved to another Redis: a script running on the old one finishes there with its
/// answer, and the next request reaches the new Redis.
#[tokio::test]
async fn a_tenant_moves_to_another_redis_without_disturbing_a_request_in_flight() {
    let (a, b) = (TestRedis::start(), TestRedis::start());
    a.query(&["SET", "where", "a"]);
    b.query(&["SET", "where", "b"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    write(&path, &tenant_file(&a.url(), &["t"], ""));
    let gw = Arc::new(start(&path).await);
    // About 300 ms of work on Redis a.
    let slow = r#"local t = redis.call('TIME'); local start = t[1] * 1000000 + t[2]
        repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] >= start + 300000
        return redis.call('GET', 'where')"#;
    let in_flight = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.post_as("t", "/", json!(["EVAL", slow, 0])).await })
    };
    // Reload once the script is in flight (restdis holds a place for it toward Redis a).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw
        .metric("restdis_redis_requests_in_flight{backend=\"acme\"}")
        .await
        < 1.0
    {
        assert!(std::time::Instant::now() < deadline, "the script never went out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    write(&path, &tenant_file(&b.url(), &["t"], ""));
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["backends_started"], 1, "{body}");
    assert_eq!(body["tenants_changed"], json!(["acme"]), "{body}");
    assert_eq!(in_flight.await.unwrap(), (200, json!({"result": "a"})));
    assert_eq!(
        gw.post_as("t", "/", json!(["GET", "where"])).await.1,
        json!({"result": "b"})
    );
    // The old backend closes its connections once nothing uses it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let clients = match a.query(&["INFO", "clients"]) {
            redis::Value::BulkString(s) => String::from_utf8_lossy(&s).into_owned(),
            other => format!("{other:?}"),
        };
        // Only this check's own connection is left.
        if clients.contains("connected_clients:1\r") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old backend still connected: {clients}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bad file changes nothing: the old tokens keep working, `/reload` says why, and the
/// failure is counted.
#[tokio::test]
async fn an_invalid_file_changes_nothing() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    write(&path, &tenant_file(&redis.url(), &["keep"], ""));
    let gw = start(&path).await;
    for (bad, why) in [
        ("redis_url = [1, 2\n", "TOML"),
        (
            &tenant_file("http://not-redis", &["other"], "") as &str,
            "tenant 'acme'",
        ),
        (
            &tenant_file(
                &redis.url(),
                &["keep"],
                "[tenants.acme.quota]\ndaily_commands = \"lots\"",
            ) as &str,
            "daily_commands",
        ),
    ] {
        write(&path, bad);
        let (status, body) = reload(&gw).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("nothing changed"), "{error}");
        assert!(error.contains(why), "{bad}: {error} should name {why}");
        assert_eq!(
            gw.post_as("keep", "/", json!(["PING"])).await,
            (200, json!({"result": "PONG"}))
        );
        assert_eq!(gw.post_as("other", "/", json!(["PING"])).await.0, 401);
    }
    assert_eq!(
        gw.metric("restdis_config_reloads_total{result=\"error\"}").await,
        3.0
    );
    assert_eq!(
        gw.metric("restdis_config_reloads_total{result=\"ok\"}").await,
        0.0
    );
    // GET is not a reload.
    let resp = gw.http.get(format!("{}/reload", gw.admin)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

/// Caps change in place and counts are kept; settings that need a restart are named and keep
/// their values.
#[tokio::test]
async fn caps_change_in_place_and_restart_only_settings_are_named() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    write(&path, &tenant_file(&redis.url(), &["t"], ""));
    let gw = start(&path).await;
    for _ in 0..5 {
        assert_eq!(gw.post_as("t", "/", json!(["INCR", "n"])).await.0, 200);
    }
    write(
        &path,
        &format!(
            "max_request_size = \"2MiB\"\n{}",
            tenant_file(&redis.url(), &["t"], "[tenants.acme.quota]\ndaily_commands = 7")
        ),
    );
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    // (A first cap would also keep usage in Redis, which takes a restart: "metering".)
    assert_eq!(
        body["restart_needed"],
        json!(["max_request_size", "metering"]),
        "{body}"
    );
    // 5 used of 7: two more pass, the third is refused.
    assert_eq!(gw.post_as("t", "/", json!(["INCR", "n"])).await.0, 200);
    assert_eq!(gw.post_as("t", "/", json!(["INCR", "n"])).await.0, 200);
    let (status, body) = gw.post_as("t", "/", json!(["INCR", "n"])).await;
    assert_eq!(status, 429, "{body}");
    // Lifting the cap applies at once.
    write(&path, &tenant_file(&redis.url(), &["t"], ""));
    assert_eq!(reload(&gw).await.0, 200);
    assert_eq!(
        gw.post_as("t", "/", json!(["GET", "n"])).await,
        (200, json!({"result": "7"}))
    );
}

/// The binary reloads on SIGHUP: a token added to the file works, and the process keeps
/// serving.
#[tokio::test]
async fn sighup_reloads_the_binary() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    write(&path, &tenant_file(&redis.url(), &["first"], ""));
    let mut child = std::process::Command::new(binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read every line, so the child never writes into a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("UPSTASH_REDIS_REST_URL=") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let http = reqwest::Client::new();
    let ping = |token: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let resp = http
                .post(&url)
                .bearer_auth(token)
                .json(&json!(["PING"]))
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }
    };
    assert_eq!(ping("first").await, 200);
    assert_eq!(ping("second").await, 401);
    write(&path, &tenant_file(&redis.url(), &["first", "second"], ""));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ping("second").await != 200 {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ping("first").await, 200);
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
}
