//! Redis going away and coming back, and commands that outlive the command timeout.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{cli_for, status_json, Gateway, TestRedis};

#[tokio::test]
async fn redis_down_gives_fast_503s_then_service_resumes() {
    let mut redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    assert_eq!(gw.cmd(json!(["SET", "k", "v"])).await.0, 200);
    redis.kill();
    // Every request gets a JSON 5xx quickly; none hangs.
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = gw.cmd(json!(["GET", "k"])).await;
        assert!(status == 503, "{status} {body}");
        assert!(body["error"].as_str().unwrap().contains("unavailable"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    let resp = gw.http.get(format!("{}/readyz", gw.admin)).send().await.unwrap();
    assert_eq!(status_json(resp).await.0, 503);
    redis.restart();
    let back = Instant::now();
    loop {
        let (status, _) = gw.cmd(json!(["SET", "k", "again"])).await;
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "restdis did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        back.elapsed() < Duration::from_secs(1),
        "reconnect took {:?}",
        back.elapsed()
    );
    // Ready once every worker's connections are back (with several workers, moments after the
    // first one's).
    loop {
        let resp = gw.http.get(format!("{}/readyz", gw.admin)).send().await.unwrap();
        if status_json(resp).await.0 == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(1),
            "not ready again after {:?}",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn restdis_starts_before_redis() {
    let mut redis = TestRedis::start();
    let cli = cli_for(&redis);
    redis.kill();
    let config = restdis::config::Config::resolve(&cli, &Default::default()).unwrap();
    let server = restdis::server::Server::start(config).await.unwrap();
    let url = format!("http://{}/", server.api_addr);
    let http = reqwest::Client::new();
    let resp = http
        .post(&url)
        .bearer_auth(crate::harness::TOKEN)
        .body("[\"PING\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.0, 503);
    redis.restart();
    assert!(
        server.state.tenancy().backends[0]
            .wait_connected(Duration::from_secs(5))
            .await
    );
    let resp = http
        .post(&url)
        .bearer_auth(crate::harness::TOKEN)
        .body("[\"PING\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (200, json!({"result": "PONG"})));
    server.shutdown().await;
}

#[tokio::test]
async fn slow_commands_get_a_504_and_later_ones_succeed() {
    let redis = TestRedis::start();
    let mut cli = cli_for(&redis);
    cli.command_timeout = Some("300ms".into());
    let gw = Gateway::start_with(cli).await;
    gw.cmd(json!(["SET", "k", "v"])).await;
    // Stall the whole Redis for 1 s from a direct connection.
    let stall = redis.stall(1);
    let started = Instant::now();
    let (status, body) = gw.cmd(json!(["GET", "k"])).await;
    assert_eq!(status, 504, "{body}");
    assert!(body["error"].as_str().unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_millis(900));
    stall.join().unwrap();
    assert_eq!(gw.cmd(json!(["GET", "k"])).await, (200, json!({"result": "v"})));
}

#[tokio::test]
async fn in_flight_requests_finish_on_shutdown() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let url = format!("{}/", gw.url);
    let http = gw.http.clone();
    // A slow Lua script keeps a request in flight while shutdown starts.
    let inflight = tokio::spawn(async move {
        let script = "local t = redis.call('TIME') local s = t[1]*1000000+t[2] \
                      while true do local n = redis.call('TIME') if n[1]*1000000+n[2]-s > 300000 then break end end \
                      return 'done'";
        let resp = http
            .post(url)
            .bearer_auth(crate::harness::TOKEN)
            .json(&json!(["EVAL", script, 0]))
            .send()
            .await
            .unwrap();
        status_json(resp).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = gw.url.clone();
    gw.shutdown().await;
    assert_eq!(inflight.await.unwrap(), (200, json!({"result": "done"})));
    // New connections are refused once it stopped.
    assert!(reqwest::Client::new()
        .post(format!("{url}/"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn a_restart_between_requests_costs_no_failed_request() {
    let mut redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    assert_eq!(gw.cmd(json!(["SET", "k", "v"])).await.0, 200);
    redis.kill();
    // restdis notices the closed connection without any request (every worker's, with
    // RESTDIS_TEST_WORKERS: each has its own connections).
    let backends = gw.state().every_backend();
    let started = Instant::now();
    while backends.iter().any(|b| b.is_connected()) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the dead connection went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.restart();
    for b in &backends {
        assert!(b.wait_connected(Duration::from_secs(2)).await);
    }
    assert_eq!(gw.cmd(json!(["GET", "k"])).await, (200, json!({"result": null})));
    let resp = gw.http.get(format!("{}/readyz", gw.admin)).send().await.unwrap();
    assert_eq!(status_json(resp).await.0, 200);
}

/// With Redis stalled, requests beyond `max_in_flight` wait at most `queue_timeout`, then get a
/// JSON 503; those admitted complete once Redis answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_get_503_after_the_queue_timeout() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[limits]\nmax_in_flight = 2\nqueue_timeout = \"200ms\"\n").unwrap();
    let mut cli = cli_for(&redis);
    cli.config = Some(file);
    // One worker: with more, the limit is split between them and which worker a connection
    // lands on decides which requests pass.
    cli.worker_threads = Some("1".into());
    let gw = std::sync::Arc::new(Gateway::start_with(cli).await);
    gw.cmd(json!(["SET", "k", "v"])).await;
    let stall = redis.stall(1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { (gw.cmd(json!(["GET", "k"])).await, Instant::now()) })
        })
        .collect();
    let mut ok = 0;
    let mut overloaded = 0;
    for t in tasks {
        let ((status, body), done) = t.await.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                assert!(body["error"].as_str().unwrap().contains("overloaded"), "{body}");
                assert!(
                    done - started < Duration::from_millis(700),
                    "a refused request waited too long"
                );
                overloaded += 1;
            }
            other => panic!("{other} {body}"),
        }
    }
    stall.join().unwrap();
    assert_eq!((ok, overloaded), (2, 3));
}
