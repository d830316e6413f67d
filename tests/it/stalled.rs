//! Stalled stream readers (issue 15): 50 subscribers that never read while hundreds of MB are
//! published. restdis (the real binary, a child process, so its RSS is its own) must stay
//! within a generous memory bound, drop the streams with a final `slow consumer` event,
//! count them, keep answering other clients, and close every stream once the readers leave.
//! Not a timing test: only memory, counts and outcomes are asserted.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::harness::{binary, free_port, TestRedis, TOKEN};

const SUBSCRIBERS: usize = 50;
const PAYLOAD: usize = 64 * 1024;
/// 3,200 messages of 64 KiB: 200 MiB published, 10 GiB if every stream buffered them all.
const MESSAGES: usize = 3200;

struct Restdis {
    child: Child,
    url: String,
    admin: String,
}

impl Drop for Restdis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The value of the first series of metric `name` on the admin listener `admin` (0 if absent).
pub(crate) async fn metric(http: &reqwest::Client, admin: &str, name: &str) -> f64 {
    let text = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::harness::metric_value(&text, name)
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

/// A raw HTTP connection that asks for a stream and then reads nothing (4 KiB receive buffer).
async fn stalled_subscriber(url: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let req = format!(
        "POST /subscribe/flood HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Accept: text/event-stream\r\nContent-Length: 2\r\n\r\n[]"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    stream
}

async fn wait_until<F: Fn() -> bool>(what: &str, deadline: Duration, ok: F) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < deadline, "{what} within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_stalled_readers_stay_bounded_and_are_dropped() {
    let redis = TestRedis::start();
    let (port, admin_port) = (free_port(), free_port());
    let child = Command::new(binary())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(["--redis-url", &redis.url(), "--token", TOKEN, "--log", "warn"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Restdis {
        child,
        url: format!("http://127.0.0.1:{port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
    };
    let pid = gw.child.id();
    let http = reqwest::Client::new();
    let get = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/get/k?_token={TOKEN}"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let started = Instant::now();
    while get(http.clone(), gw.url.clone()).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "restdis did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_before = rss_kib(pid);

    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        subs.push(stalled_subscriber(&gw.url).await);
    }
    wait_until("every subscription", Duration::from_secs(10), || {
        numsub(&redis, "flood") == SUBSCRIBERS as i64
    })
    .await;

    let url = redis.url();
    let publisher = std::thread::spawn(move || {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_connection().unwrap();
        let payload = vec![b'x'; PAYLOAD];
        for _ in 0..MESSAGES / 100 {
            let mut pipe = redis::pipe();
            for _ in 0..100 {
                pipe.cmd("PUBLISH").arg("flood").arg(&payload[..]);
            }
            let _: Vec<i64> = pipe.query(&mut conn).unwrap();
        }
    });
    let mut peak = rss_before;
    let mut gets_ok = 0;
    while !publisher.is_finished() {
        peak = peak.max(rss_kib(pid));
        if get(http.clone(), gw.url.clone()).await == 200 {
            gets_ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.join().unwrap();
    peak = peak.max(rss_kib(pid));
    eprintln!(
        "restdis RSS {} MiB before, peak {} MiB while {} MiB were published; {gets_ok} GETs answered",
        rss_before / 1024,
        peak / 1024,
        (PAYLOAD * MESSAGES) >> 20
    );
    assert!(
        peak.saturating_sub(rss_before) < 200 * 1024,
        "RSS grew from {rss_before} KiB to {peak} KiB"
    );
    assert_eq!(
        get(http.clone(), gw.url.clone()).await,
        200,
        "a normal GET still works"
    );
    assert_eq!(
        numsub(&redis, "flood"),
        0,
        "every stalled stream closed its Redis connection"
    );
    // Every stream ends as a slow consumer, or, when Redis's own pubsub output limit cut its
    // connection first (the machine is busy publishing), as `redis_closed` once restdis has
    // read what Redis sent before closing. Redis's count reaches 0 before restdis has read
    // that far, so poll for the sum.
    let (mut dropped, mut closed) = (0.0, 0.0);
    let started = Instant::now();
    while dropped + closed < SUBSCRIBERS as f64 && started.elapsed() < Duration::from_secs(10) {
        dropped = metric(
            &http,
            &gw.admin,
            "restdis_streams_dropped_total{reason=\"slow_consumer\"}",
        )
        .await;
        closed = metric(
            &http,
            &gw.admin,
            "restdis_streams_dropped_total{reason=\"redis_closed\"}",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped >= 1.0, "no stream was dropped as a slow consumer");
    assert_eq!(dropped + closed, SUBSCRIBERS as f64);

    // A stalled reader that reads at last gets what was waiting, then the final event, then
    // the end of the body.
    let slow = subs.pop().unwrap().into_std().unwrap();
    slow.set_nonblocking(false).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reader = std::thread::spawn(move || {
        // The connection stays open (keep-alive): read until the chunked body's last chunk.
        let mut all = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !all.ends_with(b"\r\n0\r\n\r\n") {
            match (&slow).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        all
    });
    let all = reader.join().unwrap();
    let text = String::from_utf8_lossy(&all);
    let last_event = text.rsplit("data: ").next().unwrap_or_default();
    assert!(
        last_event.starts_with("error,slow consumer: ")
            || last_event.starts_with("error,the Redis connection"),
        "the last event is {last_event:?}"
    );
    assert!(text.ends_with("0\r\n\r\n"), "the chunked body ended");

    drop(subs);
    let started = Instant::now();
    while metric(&http, &gw.admin, "restdis_streams_open").await != 0.0 {
        assert!(started.elapsed() < Duration::from_secs(10), "streams still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
