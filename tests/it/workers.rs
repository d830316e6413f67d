//! `--worker-threads N`: N event loops, each with its own listener socket and its own Redis
//! connections. The whole suite also runs with `RESTDIS_TEST_WORKERS=2` (`scripts/test`); these
//! tests check what only several workers have: that each holds connections of its own and
//! serves, that a reload reaches every worker, and that shutdown drains every worker.

use std::sync::Arc;
use std::time::Duration;

use restdis::cli::Cli;
use serde_json::json;

use crate::harness::{cli_for, status_json, Gateway, TestRedis, TOKEN};

/// Connections from restdis that Redis sees, by client name or address (all of them here:
/// the test talks to Redis only through `query`, one short connection at a time).
fn redis_clients(redis: &TestRedis) -> usize {
    match redis.query(&["CLIENT", "LIST"]) {
        redis::Value::BulkString(s) => String::from_utf8_lossy(&s).lines().count().saturating_sub(1),
        redis::Value::VerbatimString { text, .. } => text.lines().count().saturating_sub(1),
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

fn workers(n: usize, redis: &TestRedis) -> Cli {
    Cli {
        worker_threads: Some(n.to_string()),
        connections: Some(2),
        ..cli_for(redis)
    }
}

/// Each worker opens its own connections to Redis, and many client connections are served
/// (spread by the kernel over the workers' sockets) with every increment counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_has_its_own_connections_and_serves() {
    let redis = TestRedis::start();
    let gw = Gateway::start_with(workers(3, &redis)).await;
    // 3 workers x 2 pipelined connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while redis_clients(&redis) < 6 {
        assert!(std::time::Instant::now() < deadline, "workers did not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redis_clients(&redis), 6);
    assert_eq!(
        gw.metric("restdis_redis_connections{backend=\"default\"}").await,
        6.0
    );
    // 48 fresh connections, 20 increments each.
    let url = gw.url.clone();
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..20 {
                let resp = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&json!(["INCR", "n"]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(status_json(resp).await.0, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(gw.cmd(json!(["GET", "n"])).await.1, json!({"result": "960"}));
    // The kernel spread the 48 connections over the workers' sockets (all on one of three
    // would be a chance of 3 in 3^48).
    let text = gw.metrics_text().await;
    let per_worker: Vec<f64> = (0..3)
        .map(|i| {
            crate::harness::metric_value(
                &text,
                &format!("restdis_worker_connections_total{{worker=\"{i}\"}}"),
            )
        })
        .collect();
    assert!(
        per_worker.iter().filter(|n| **n > 0.0).count() >= 2,
        "{per_worker:?}"
    );
    assert!(per_worker.iter().sum::<f64>() >= 48.0, "{per_worker:?}");
    gw.shutdown().await;
}

/// A reload reaches every worker: a new token works on every fresh connection, wherever the
/// kernel puts it, and a removed one fails on every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_every_worker() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    let file = |token: &str| format!("redis_url = {:?}\ntoken = {token:?}\n", redis.url());
    std::fs::write(&path, file("before")).unwrap();
    let gw = Gateway::start_with(Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(path.clone()),
        worker_threads: Some("2".into()),
        ..Cli::default()
    })
    .await;
    std::fs::write(&path, file("after")).unwrap();
    let resp = gw.http.post(format!("{}/reload", gw.admin)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for _ in 0..32 {
        // A new client each time: a new connection, on either worker.
        let http = reqwest::Client::new();
        let ask = |token: &'static str| {
            http.post(&gw.url)
                .bearer_auth(token)
                .json(&json!(["PING"]))
                .send()
        };
        assert_eq!(ask("after").await.unwrap().status(), 200);
        assert_eq!(ask("before").await.unwrap().status(), 401);
    }
}

/// Shutdown drains every worker: slow requests on many connections all get their answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_every_worker() {
    let redis = TestRedis::start();
    let gw = Arc::new(Gateway::start_with(workers(2, &redis)).await);
    let slow = r#"local t = redis.call('TIME'); local start = t[1] * 1000000 + t[2]
        repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] >= start + 250000
        return 'done'"#;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let url = gw.url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let resp = http
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&json!(["EVAL", slow, 0]))
                .send()
                .await
                .unwrap();
            status_json(resp).await
        }));
    }
    // Once all are in flight (Redis runs the 250 ms scripts one after another, 4 s in all,
    // within the 10 s shutdown timeout), shut down.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while gw
        .metric("restdis_redis_requests_in_flight{backend=\"default\"}")
        .await
        < 16.0
    {
        assert!(std::time::Instant::now() < deadline, "requests never went out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let gw = Arc::try_unwrap(gw).ok().unwrap();
    gw.shutdown().await;
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, json!({"result": "done"})));
    }
}
