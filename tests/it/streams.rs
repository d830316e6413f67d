//! Server-sent event streams (`/subscribe`, `/psubscribe`, `/monitor`) and the opt-in
//! dedicated mode for blocking commands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{cli_for, status_json, Gateway, TestRedis, RO_TOKEN, TOKEN};

/// An open event stream, read frame by frame.
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub(crate) async fn open(gw: &Gateway, path: &str, token: &str) -> Self {
        let resp = gw
            .http
            .post(format!("{}{path}", gw.url))
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event's data (its `data:` lines joined by `\n`), skipping heartbeats.
    pub(crate) async fn next(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                if data.is_empty() {
                    continue; // a comment (heartbeat)
                }
                return data.join("\n");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.resp.chunk())
                .await
                .expect("no event within 5 s");
            let chunk = chunk.unwrap().expect("stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn numsub(redis: &TestRedis, channel: &str) -> i64 {
    match redis.query(&["PUBSUB", "NUMSUB", channel]) {
        redis::Value::Array(v) => match v[1] {
            redis::Value::Int(n) => n,
            _ => -1,
        },
        _ => -1,
    }
}

#[tokio::test]
async fn subscribe_frames_and_payloads() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let mut sub = Sse::open(&gw, "/subscribe/chat", TOKEN).await;
    assert_eq!(sub.next().await, "subscribe,chat,1");
    assert_eq!(
        gw.cmd(json!(["PUBLISH", "chat", "hello"])).await,
        (200, json!({"result": 1}))
    );
    assert_eq!(sub.next().await, "message,chat,hello");
    // Payloads are raw (never base64, even with the header), commas included.
    gw.cmd(json!(["PUBLISH", "chat", "{\"a\":1,\"b\":[2,3]}"])).await;
    assert_eq!(sub.next().await, "message,chat,{\"a\":1,\"b\":[2,3]}");
    // A newline splits into several data: lines, which EventSource joins back with \n.
    gw.cmd(json!(["PUBLISH", "chat", "one\ntwo"])).await;
    assert_eq!(sub.next().await, "message,chat,one\ntwo");
    // Invalid UTF-8 arrives as U+FFFD.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("chat")
        .arg(&b"bad\xff"[..])
        .query(&mut conn)
        .unwrap();
    assert_eq!(sub.next().await, "message,chat,bad\u{FFFD}");
    // Path form GET with _token (EventSource), two channels: counts 1 and 2.
    let resp = gw
        .http
        .get(format!("{}/subscribe/a/b?_token={TOKEN}", gw.url))
        .send()
        .await
        .unwrap();
    let mut two = Sse {
        resp,
        buf: String::new(),
    };
    assert_eq!(two.next().await, "subscribe,a,1");
    assert_eq!(two.next().await, "subscribe,b,2");
}

#[tokio::test]
async fn psubscribe_and_one_connection_per_stream() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let mut p = Sse::open(&gw, "/psubscribe/user:*", RO_TOKEN).await;
    assert_eq!(p.next().await, "psubscribe,user:*,1");
    let mut first = Sse::open(&gw, "/subscribe/user:1", TOKEN).await;
    let mut second = Sse::open(&gw, "/subscribe/user:1", TOKEN).await;
    assert_eq!(first.next().await, "subscribe,user:1,1");
    assert_eq!(
        second.next().await,
        "subscribe,user:1,1",
        "each stream has its own connection"
    );
    assert_eq!(
        gw.cmd(json!(["PUBLISH", "user:1", "x"])).await.1,
        json!({"result": 3})
    );
    assert_eq!(p.next().await, "pmessage,user:*,user:1,x");
    assert_eq!(first.next().await, "message,user:1,x");
    assert_eq!(second.next().await, "message,user:1,x");
    let (status, body) = gw.post_as(TOKEN, "/subscribe", json!([])).await;
    assert_eq!(status, 400);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_departed_client_frees_its_subscription_quickly() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let mut sub = Sse::open(&gw, "/subscribe/gone", TOKEN).await;
    assert_eq!(sub.next().await, "subscribe,gone,1");
    assert_eq!(numsub(&redis, "gone"), 1);
    drop(sub);
    let left = Instant::now();
    while numsub(&redis, "gone") != 0 {
        assert!(
            left.elapsed() < Duration::from_secs(2),
            "subscription still open after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("subscription closed {:?} after the client left", left.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_each_get_every_message() {
    let redis = TestRedis::start();
    let gw = Arc::new(Gateway::start(&redis).await);
    let mut subs = Vec::new();
    for _ in 0..200 {
        let mut s = Sse::open(&gw, "/subscribe/fan", TOKEN).await;
        assert_eq!(s.next().await, "subscribe,fan,1");
        subs.push(s);
    }
    assert_eq!(numsub(&redis, "fan"), 200);
    for i in 0..5 {
        assert_eq!(
            gw.cmd(json!(["PUBLISH", "fan", format!("m{i}")])).await.1,
            json!({"result": 200})
        );
    }
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                for i in 0..5 {
                    assert_eq!(s.next().await, format!("message,fan,m{i}"));
                }
            })
        })
        .collect();
    for r in readers {
        r.await.unwrap();
    }
}

pub(crate) fn config_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("restdis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn stream_limits_and_monitor_rules() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cli = cli_for(&redis);
    cli.config = Some(config_file(&dir, "[streams]\nmax_per_tenant = 2\n"));
    let gw = Gateway::start_with(cli).await;
    let mut a = Sse::open(&gw, "/subscribe/x", TOKEN).await;
    let _b = Sse::open(&gw, "/subscribe/y", TOKEN).await;
    let (status, body) = gw.post_as(TOKEN, "/subscribe/z", json!([])).await;
    assert_eq!(status, 429);
    assert!(body["error"].as_str().unwrap().contains("too many open streams"));
    assert_eq!(a.next().await, "subscribe,x,1");
    drop(a);
    // The place frees up once the departed stream is noticed.
    let started = Instant::now();
    loop {
        let resp = gw
            .http
            .post(format!("{}/monitor", gw.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let mut m = Sse {
                resp,
                buf: String::new(),
            };
            assert_eq!(m.next().await, "\"OK\"");
            gw.cmd(json!(["GET", "watched-key"])).await;
            let line = m.next().await;
            assert!(line.contains("\"GET\" \"watched-key\""), "{line}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // MONITOR needs a full token.
    let (status, body) = gw.post_as(RO_TOKEN, "/monitor", json!([])).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("NOPERM"));
    // ... and can be disabled.
    let mut cli = cli_for(&redis);
    cli.config = Some(config_file(&dir, "[streams]\nmonitor = false\n"));
    let gw2 = Gateway::start_with(cli).await;
    let resp = gw2
        .http
        .post(format!("{}/monitor", gw2.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("disabled"));
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let mut sub = Sse::open(&gw, "/subscribe/bye", TOKEN).await;
    assert_eq!(sub.next().await, "subscribe,bye,1");
    let started = Instant::now();
    gw.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    // The body ends (no error, no hang).
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match sub.resp.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(end, "the stream ended with an error instead of cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedicated_blocking_waits_without_stalling_others() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cli = cli_for(&redis);
    cli.config = Some(config_file(
        &dir,
        "[blocking]\nmode = \"dedicated\"\npool_size = 1\nmax_timeout = \"3s\"\n",
    ));
    // One worker: each worker has a pool of its own (at least one connection).
    cli.worker_threads = Some("1".into());
    let gw = Arc::new(Gateway::start_with(cli).await);
    gw.cmd(json!(["SET", "k", "v"])).await;
    let waiter = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = gw.cmd(json!(["BLPOP", "jobs", 2])).await;
            (reply, started.elapsed())
        })
    };
    // While it waits, 100 GETs stay fast and the pool of one is busy.
    let mut busy_seen = false;
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let t = Instant::now();
        assert_eq!(gw.cmd(json!(["GET", "k"])).await, (200, json!({"result": "v"})));
        slowest = slowest.max(t.elapsed());
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) && !busy_seen {
        let (status, body) = gw.cmd(json!(["BLPOP", "other", 1])).await;
        if status == 429 {
            assert!(body["error"].as_str().unwrap().contains("busy"));
            busy_seen = true;
        }
    }
    assert!(
        busy_seen,
        "a second blocking command while the pool of one is busy must be refused"
    );
    let ((status, body), waited) = waiter.await.unwrap();
    assert_eq!((status, body), (200, json!({"result": null})));
    assert!(
        waited >= Duration::from_millis(1900),
        "BLPOP 2 returned after {waited:?}"
    );
    eprintln!("slowest GET while BLPOP waited: {slowest:?}");
    assert!(slowest < Duration::from_millis(500));
    // A waiting pop gets the pushed value; 0 (forever) is capped to max_timeout.
    let popper = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.cmd(json!(["BLPOP", "jobs", 0])).await })
    };
    let started = Instant::now();
    loop {
        let (_, clients) = gw.cmd(json!(["CLIENT", "LIST"])).await;
        if clients["result"].as_str().unwrap().contains("cmd=blpop") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.cmd(json!(["RPUSH", "jobs", "j1"])).await;
    assert_eq!(popper.await.unwrap(), (200, json!({"result": ["jobs", "j1"]})));
}
