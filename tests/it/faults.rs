//! Faults on the Redis side while clients keep sending: Redis killed and restarted, its
//! connections killed from the Redis side, a network path that stalls, cuts or silently dies
//! (a TCP [`Proxy`] in the test), and shutdown while requests are in flight.
//!
//! The guarantees checked everywhere: every request gets an answer (200, or a JSON 503/504)
//! within the command timeout, none hangs; an INCR is never applied twice nor lost once
//! acknowledged (acknowledged <= final counter <= sent); service resumes within a second of
//! Redis being reachable again; a fault on one tenant's Redis does not touch another tenant.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::harness::{cli_for, Gateway, TestRedis, TOKEN};

/// The command timeout of every gateway here.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack on a busy 2-core CI box on top of the command timeout.
const SLACK: Duration = Duration::from_millis(700);
/// A request not answered within this is a hang.
const HANG: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// A TCP proxy that can stall, cut, or blackhole the connections it carries.
// ---------------------------------------------------------------------------------------

/// What the proxy does now.
#[derive(Debug, Clone, Copy, Default)]
struct Ctl {
    /// Read from restdis but forward nothing to Redis (bytes are held until unstalled).
    stall_requests: bool,
    /// Read from Redis but forward nothing to restdis.
    stall_replies: bool,
    /// Bumped to close every connection open now; new connections are served normally.
    cut: u64,
    /// Connections with an id below this are held forever (a silently dead path); newer
    /// connections are served normally.
    blackhole_below: u64,
}

/// A loopback TCP proxy in front of one upstream port.
struct Proxy {
    port: u16,
    ctl: watch::Sender<Ctl>,
    /// Connections accepted so far (also the next connection's id).
    accepted: Arc<AtomicU64>,
    /// Bytes read from the client side (restdis) and not yet forwarded upstream.
    held_up: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (ctl, rx) = watch::channel(Ctl::default());
        let accepted = Arc::new(AtomicU64::new(0));
        let held_up = Arc::new(AtomicUsize::new(0));
        let (acc, held) = (accepted.clone(), held_up.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = acc.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, rx.clone(), id, Some(held.clone())));
                tokio::spawn(pump(sr, cw, rx.clone(), id, None));
            }
        });
        Self {
            port,
            ctl,
            accepted,
            held_up,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops (or restarts) forwarding in both directions.
    fn stall(&self, on: bool) {
        self.ctl.send_modify(|c| {
            c.stall_requests = on;
            c.stall_replies = on;
        });
    }

    /// Stops (or restarts) forwarding requests only: replies already on their way still arrive.
    fn stall_requests(&self, on: bool) {
        self.ctl.send_modify(|c| c.stall_requests = on);
    }

    fn cut(&self) {
        self.ctl.send_modify(|c| c.cut += 1);
    }

    /// Every connection open now goes silent forever, in both directions.
    fn blackhole_existing(&self) {
        let below = self.accepted.load(Ordering::SeqCst);
        self.ctl.send_modify(|c| c.blackhole_below = below);
    }

    fn held_up(&self) -> usize {
        self.held_up.load(Ordering::SeqCst)
    }
}

/// Copies one direction of a proxied connection, obeying the control channel. `held` is the
/// held-bytes counter for the restdis-to-Redis direction, `None` for replies.
async fn pump(
    mut src: tokio::net::tcp::OwnedReadHalf,
    mut dst: tokio::net::tcp::OwnedWriteHalf,
    mut ctl: watch::Receiver<Ctl>,
    id: u64,
    held: Option<Arc<AtomicUsize>>,
) {
    let born = ctl.borrow().cut;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        let c = *ctl.borrow_and_update();
        if c.cut != born {
            break;
        }
        let stalled = if held.is_some() {
            c.stall_requests
        } else {
            c.stall_replies
        };
        let holding = stalled || id < c.blackhole_below;
        if !holding && !pending.is_empty() {
            if let Some(h) = &held {
                h.fetch_sub(pending.len(), Ordering::SeqCst);
            }
            if dst.write_all(&pending).await.is_err() {
                break;
            }
            pending.clear();
            continue;
        }
        if eof && pending.is_empty() {
            let _ = dst.shutdown().await;
            break;
        }
        tokio::select! {
            r = src.read(&mut buf), if !eof => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    if let Some(h) = &held {
                        h.fetch_add(n, Ordering::SeqCst);
                    }
                }
            },
            changed = ctl.changed() => if changed.is_err() { break },
        }
    }
    if let Some(h) = &held {
        h.fetch_sub(pending.len(), Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// Load helpers.
// ---------------------------------------------------------------------------------------

/// One answered request.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    elapsed: Duration,
}

/// Sends one JSON command; `Err` is a transport failure or a hang.
/// `n` concurrent requests with the same body, each in its own task.
fn spawn_sends(
    gw: &Gateway,
    token: &'static str,
    body: &'static str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    (0..n)
        .map(|_| {
            let (http, url) = (gw.http.clone(), gw.url.clone());
            tokio::spawn(async move { send(&http, &url, token, body).await.unwrap() })
        })
        .collect()
}

async fn send(http: &reqwest::Client, url: &str, token: &str, body: &str) -> Result<Answer, String> {
    let started = Instant::now();
    let fut = async {
        let resp = http
            .post(format!("{url}/"))
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{status} with a non-JSON body ({e}): {text:?}"))?;
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(HANG, fut).await {
        Err(_) => Err(format!("no answer within {HANG:?} (hang)")),
        Ok(Err(e)) => Err(e),
        Ok(Ok((status, body))) => Ok(Answer {
            status,
            body,
            elapsed: started.elapsed(),
        }),
    }
}

/// Checks the shape every answer must have: 200, or 503/504 with `{"error": "..."}`, within
/// the command timeout.
fn check_answer(a: &Answer, what: &str) {
    assert!(
        a.status == 200 || ((a.status == 503 || a.status == 504) && a.body["error"].is_string()),
        "{what}: unexpected answer {} {}",
        a.status,
        a.body
    );
    assert!(
        a.elapsed <= COMMAND_TIMEOUT + SLACK,
        "{what}: took {:?} (command timeout {COMMAND_TIMEOUT:?})",
        a.elapsed
    );
}

/// Counters of one load run.
#[derive(Default)]
struct Tally {
    sent_incr: AtomicU64,
    acked_incr: AtomicU64,
    ok: AtomicU64,
    unavailable: AtomicU64,
    timeouts: AtomicU64,
    max_ms: AtomicU64,
}

impl Tally {
    fn record(&self, a: &Answer) {
        match a.status {
            200 => self.ok.fetch_add(1, Ordering::Relaxed),
            503 => self.unavailable.fetch_add(1, Ordering::Relaxed),
            _ => self.timeouts.fetch_add(1, Ordering::Relaxed),
        };
        self.max_ms
            .fetch_max(a.elapsed.as_millis() as u64, Ordering::Relaxed);
    }

    fn summary(&self) -> String {
        format!(
            "sent INCR {}, acked INCR {}, 200s {}, 503s {}, 504s {}, slowest {} ms",
            self.sent_incr.load(Ordering::Relaxed),
            self.acked_incr.load(Ordering::Relaxed),
            self.ok.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.timeouts.load(Ordering::Relaxed),
            self.max_ms.load(Ordering::Relaxed),
        )
    }
}

fn int(v: redis::Value) -> i64 {
    match v {
        redis::Value::Nil => 0,
        redis::Value::Int(i) => i,
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap().parse().unwrap(),
        other => panic!("not a counter: {other:?}"),
    }
}

/// Polls `POST /` until a 200 or the deadline; returns the time it took.
async fn until_ok(http: &reqwest::Client, url: &str, token: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(a) = send(http, url, token, r#"["PING"]"#).await {
            if a.status == 200 {
                return started.elapsed();
            }
            check_answer(&a, "while recovering");
        }
        assert!(
            started.elapsed() < within,
            "no 200 within {within:?} of the fault ending"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Redis killed and restarted while 32 clients send INCRs and GETs for about two seconds.
/// Restart loses data, so the counter check covers only INCRs sent, against a fresh key,
/// after Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() {
    let redis = TestRedis::start();
    let mut cli = cli_for(&redis);
    cli.command_timeout = Some(format!("{}ms", COMMAND_TIMEOUT.as_millis()));
    let gw = Gateway::start_with(cli).await;
    // 0: before the kill, 1: Redis down, 2: Redis back (INCRs go to a fresh key and count).
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let back_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_ok_after_back: Arc<Mutex<Option<Instant>>> = Arc::default();
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for c in 0..32 {
        let (phase, stop, tally) = (phase.clone(), stop.clone(), tally.clone());
        let (back_at, first_ok) = (back_at.clone(), first_ok_after_back.clone());
        let (http, url) = (gw.http.clone(), gw.url.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let p = phase.load(Ordering::SeqCst);
                let key = if p == 2 { "after" } else { "before" };
                let is_incr = !(i + c).is_multiple_of(4);
                let body = if is_incr {
                    format!(r#"["INCR","{key}"]"#)
                } else {
                    format!(r#"["GET","{key}"]"#)
                };
                if is_incr && p == 2 {
                    tally.sent_incr.fetch_add(1, Ordering::SeqCst);
                }
                let started = Instant::now();
                let a = send(&http, &url, TOKEN, &body).await.unwrap();
                check_answer(&a, &body);
                tally.record(&a);
                if a.status == 200 {
                    if is_incr && p == 2 {
                        tally.acked_incr.fetch_add(1, Ordering::SeqCst);
                    }
                    let back = *back_at.lock().unwrap();
                    if back.is_some_and(|b| started >= b) {
                        let mut f = first_ok.lock().unwrap();
                        f.get_or_insert_with(Instant::now);
                    }
                }
                if a.status != 200 {
                    // A down Redis answers at once; do not spin a core flat out.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    phase.store(1, Ordering::SeqCst);
    let mut redis = tokio::task::spawn_blocking(move || {
        let mut redis = redis;
        redis.kill();
        redis
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    *back_at.lock().unwrap() = Some(Instant::now());
    phase.store(2, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(900)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let summary = tally.summary();
    eprintln!("kill/restart under load: {summary}");
    assert!(
        tally.unavailable.load(Ordering::SeqCst) > 0,
        "Redis was down but no request saw a 503: {summary}"
    );
    let back = back_at.lock().unwrap().unwrap();
    let first_ok = first_ok_after_back
        .lock()
        .unwrap()
        .expect("no 200 after Redis came back");
    let recovery = first_ok.duration_since(back);
    eprintln!("kill/restart under load: first 200 {recovery:?} after Redis was back");
    assert!(recovery < Duration::from_secs(1), "recovery took {recovery:?}");
    let sent = tally.sent_incr.load(Ordering::SeqCst) as i64;
    let acked = tally.acked_incr.load(Ordering::SeqCst) as i64;
    let final_count = int(redis.query(&["GET", "after"]));
    assert!(
        acked <= final_count && final_count <= sent,
        "acked {acked} <= final {final_count} <= sent {sent} does not hold"
    );
    assert!(acked > 0, "nothing was acknowledged after the restart: {summary}");
}

/// restdis's Redis connections killed from the Redis side (`CLIENT KILL TYPE normal`, every
/// 100 ms) while 32 clients INCR one counter: no INCR is lost once acknowledged or applied
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_side_connection_kills_under_load() {
    let redis = TestRedis::start();
    let mut cli = cli_for(&redis);
    cli.command_timeout = Some(format!("{}ms", COMMAND_TIMEOUT.as_millis()));
    let gw = Gateway::start_with(cli).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for c in 0..32u64 {
        let (stop, tally) = (stop.clone(), tally.clone());
        let (http, url) = (gw.http.clone(), gw.url.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let is_incr = !(i + c).is_multiple_of(4);
                let body = if is_incr {
                    r#"["INCR","ctr"]"#
                } else {
                    r#"["GET","ctr"]"#
                };
                if is_incr {
                    tally.sent_incr.fetch_add(1, Ordering::SeqCst);
                }
                let a = send(&http, &url, TOKEN, body).await.unwrap();
                check_answer(&a, body);
                tally.record(&a);
                if a.status == 200 && is_incr {
                    tally.acked_incr.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let killer = redis::Client::open(redis.url()).unwrap();
    let mut conn = killer.get_multiplexed_async_connection().await.unwrap();
    let mut killed = 0i64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal"])
            .query_async(&mut conn)
            .await
            .unwrap();
        killed += n;
    }
    // Service resumes once the kills stop.
    let recovery = until_ok(&gw.http, &gw.url, TOKEN, Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let summary = tally.summary();
    eprintln!("CLIENT KILL under load: {killed} connections killed; {summary}; recovered in {recovery:?}");
    assert!(killed > 0, "CLIENT KILL killed nothing");
    let sent = tally.sent_incr.load(Ordering::SeqCst) as i64;
    let acked = tally.acked_incr.load(Ordering::SeqCst) as i64;
    let final_count = int(redis.query(&["GET", "ctr"]));
    assert!(
        acked <= final_count && final_count <= sent,
        "acked {acked} <= final {final_count} <= sent {sent} does not hold"
    );
}

/// Writes a two-tenant config: `a` behind `a_url`, `b` on `b_url`.
fn two_tenants(dir: &tempfile::TempDir, a_url: &str, b_url: &str) -> restdis::cli::Cli {
    let path = dir.path().join("restdis.toml");
    std::fs::write(
        &path,
        format!(
            "command_timeout = \"{}ms\"\n\
             [tenants.a]\ntokens = [\"token-a\"]\nredis_url = \"{a_url}\"\n\
             [tenants.b]\ntokens = [\"token-b\"]\nredis_url = \"{b_url}\"\n",
            COMMAND_TIMEOUT.as_millis()
        ),
    )
    .unwrap();
    restdis::cli::Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(path),
        ..Default::default()
    }
}

/// A stalled network path (bytes stop flowing, nothing is closed): a JSON 504 after the
/// command timeout, never a hang; another tenant on another Redis is served promptly all the
/// while; the stalled tenant is served again once the path flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_gives_json_504_and_other_tenant_is_unaffected() {
    let redis_a = TestRedis::start();
    let redis_b = TestRedis::start();
    let proxy = Proxy::start(redis_a.port).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(two_tenants(&dir, &proxy.url(), &redis_b.url())).await;
    assert_eq!(
        send(&gw.http, &gw.url, "token-a", r#"["SET","k","a"]"#)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        send(&gw.http, &gw.url, "token-b", r#"["SET","k","b"]"#)
            .await
            .unwrap()
            .status,
        200
    );

    proxy.stall(true);
    let stalled = spawn_sends(&gw, "token-a", r#"["GET","k"]"#, 8);
    // Tenant b, meanwhile: prompt 200s for as long as tenant a's requests are stuck.
    let mut b_slowest = Duration::ZERO;
    let b_started = Instant::now();
    while b_started.elapsed() < COMMAND_TIMEOUT {
        let a = send(&gw.http, &gw.url, "token-b", r#"["GET","k"]"#)
            .await
            .unwrap();
        assert_eq!((a.status, &a.body), (200, &serde_json::json!({"result": "b"})));
        b_slowest = b_slowest.max(a.elapsed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        b_slowest < Duration::from_millis(300),
        "tenant b slowed to {b_slowest:?}"
    );
    for t in stalled {
        let a = t.await.unwrap();
        assert_eq!(a.status, 504, "{}", a.body);
        assert!(
            a.body["error"].as_str().unwrap().contains("timed out"),
            "{}",
            a.body
        );
        assert!(
            a.elapsed >= COMMAND_TIMEOUT && a.elapsed <= COMMAND_TIMEOUT + SLACK,
            "504 after {:?}",
            a.elapsed
        );
    }
    proxy.stall(false);
    let recovery = until_ok(&gw.http, &gw.url, "token-a", Duration::from_secs(1)).await;
    eprintln!("stall: tenant b slowest {b_slowest:?}; tenant a back {recovery:?} after the stall ended");
    let a = send(&gw.http, &gw.url, "token-a", r#"["GET","k"]"#)
        .await
        .unwrap();
    assert_eq!(a.body, serde_json::json!({"result": "a"}));
}

/// Connections cut by the network (closed under restdis, in flight and idle): JSON 503s, never
/// a hang or a 500, and service again within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_give_json_503_then_recover() {
    let redis = TestRedis::start();
    let proxy = Proxy::start(redis.port).await;
    let gw = Gateway::start_with(gateway_cli_for(&proxy)).await;
    assert_eq!(
        send(&gw.http, &gw.url, TOKEN, r#"["SET","k","v"]"#)
            .await
            .unwrap()
            .status,
        200
    );

    // In flight: requests held by a stalled path, then the path is cut.
    proxy.stall(true);
    let inflight = spawn_sends(&gw, TOKEN, r#"["INCR","n"]"#, 4);
    // All four must be held (21 bytes each as RESP), or a late one would go out on the new
    // connection after the cut and rightly succeed.
    wait_until(Duration::from_secs(3), "requests reach the proxy", || {
        proxy.held_up() >= 4 * b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n".len()
    })
    .await;
    let cut_at = Instant::now();
    proxy.cut();
    proxy.stall(false);
    for t in inflight {
        let a = t.await.unwrap();
        assert_eq!(a.status, 503, "in-flight request on a cut connection: {}", a.body);
        assert!(
            a.body["error"].as_str().unwrap().contains("unavailable"),
            "{}",
            a.body
        );
        assert!(
            a.elapsed < COMMAND_TIMEOUT,
            "the cut took {:?} to notice",
            a.elapsed
        );
    }
    until_ok(&gw.http, &gw.url, TOKEN, Duration::from_secs(1)).await;
    eprintln!(
        "cut in flight: 503s, then a 200 {:?} after the cut",
        cut_at.elapsed()
    );

    // Idle: connections cut while nothing is in flight; the next requests see 503 or 200.
    proxy.cut();
    let cut_at = Instant::now();
    let mut statuses = Vec::new();
    loop {
        let a = send(&gw.http, &gw.url, TOKEN, r#"["GET","k"]"#).await.unwrap();
        check_answer(&a, "after an idle cut");
        assert_ne!(a.status, 504, "a cut connection must not look like a slow one");
        statuses.push(a.status);
        if a.status == 200 {
            assert_eq!(a.body, serde_json::json!({"result": "v"}));
            break;
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(1),
            "no recovery: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "idle cut: statuses until recovery {statuses:?} in {:?}",
        cut_at.elapsed()
    );
}

fn gateway_cli_for(proxy: &Proxy) -> restdis::cli::Cli {
    restdis::cli::Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        redis_url: Some(proxy.url()),
        token: Some(TOKEN.into()),
        command_timeout: Some(format!("{}ms", COMMAND_TIMEOUT.as_millis())),
        ..Default::default()
    }
}

async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < within, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A connection whose path dies silently (no FIN, no RST: a dropped NAT entry, a failed-over
/// VIP) while Redis stays reachable over a new connection. Requests time out (504) at first;
/// restdis should then give up on the dead connection and open a new one, instead of
/// answering 504 until the kernel's TCP retransmission timeout (about 15 minutes) fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_connection_is_replaced() {
    let redis = TestRedis::start();
    let proxy = Proxy::start(redis.port).await;
    let gw = Gateway::start_with(gateway_cli_for(&proxy)).await;
    assert_eq!(
        send(&gw.http, &gw.url, TOKEN, r#"["PING"]"#)
            .await
            .unwrap()
            .status,
        200
    );
    proxy.blackhole_existing();
    let started = Instant::now();
    let mut statuses = Vec::new();
    loop {
        let a = send(&gw.http, &gw.url, TOKEN, r#"["PING"]"#).await.unwrap();
        check_answer(&a, "on a blackholed path");
        statuses.push(a.status);
        if a.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < 4 * COMMAND_TIMEOUT + Duration::from_secs(1),
            "still no 200 after {:?}: {statuses:?}",
            started.elapsed()
        );
    }
    eprintln!(
        "blackhole: statuses until recovery {statuses:?} in {:?}",
        started.elapsed()
    );
}

/// Shutdown under load: requests in flight (held at Redis by a stalled path) all complete
/// with 200 after shutdown began; new connections are refused as soon as it begins; no client
/// ever gets a 5xx or a truncated answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_finishes_in_flight_and_refuses_new_connections() {
    let redis = TestRedis::start();
    let proxy = Proxy::start(redis.port).await;
    let mut cli = gateway_cli_for(&proxy);
    cli.command_timeout = Some("10s".into());
    let gw = Gateway::start_with(cli).await;
    assert_eq!(
        send(&gw.http, &gw.url, TOKEN, r#"["PING"]"#)
            .await
            .unwrap()
            .status,
        200
    );
    let addr: SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    let url = gw.url.clone();

    // Background load on keep-alive connections, until the server is gone.
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (sent, acked, url) = (sent.clone(), acked.clone(), url.clone());
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                sent.fetch_add(1, Ordering::SeqCst);
                match send(&http, &url, TOKEN, r#"["INCR","n"]"#).await {
                    Ok(a) => {
                        assert_eq!(a.status, 200, "during shutdown: {}", a.body);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    // Refused or closed before the request was read: the server is gone.
                    Err(e) if e.starts_with("transport") => return,
                    Err(e) => panic!("during shutdown: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 16 requests in flight, each on its own connection, held at the proxy. Only requests are
    // held, so each load client also ends up with exactly one request held.
    proxy.stall_requests(true);
    let mut inflight = Vec::new();
    for _ in 0..16 {
        let url = url.clone();
        sent.fetch_add(1, Ordering::SeqCst);
        inflight.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            send(&http, &url, TOKEN, r#"["INCR","n"]"#).await
        }));
    }
    // `INCR n` is 21 bytes of RESP: wait until the 16 and one of each load client are held.
    wait_until(Duration::from_secs(5), "24 requests are held at Redis", || {
        proxy.held_up() >= 24 * 21
    })
    .await;

    let shutdown = tokio::spawn(gw.shutdown());
    wait_until(Duration::from_secs(2), "new connections are refused", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    })
    .await;
    for t in &inflight {
        assert!(
            !t.is_finished(),
            "an in-flight request ended before Redis answered"
        );
    }
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for in-flight requests"
    );
    proxy.stall_requests(false);
    let mut finished = 0;
    for t in inflight {
        let a = t
            .await
            .unwrap()
            .expect("an in-flight request was dropped by shutdown");
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body["result"].is_i64(), "{}", a.body);
        acked.fetch_add(1, Ordering::SeqCst);
        finished += 1;
    }
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown did not finish after in-flight requests did")
        .unwrap();
    for l in load {
        tokio::time::timeout(Duration::from_secs(5), l)
            .await
            .expect("a load client hung after shutdown")
            .unwrap();
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
    let (sent, acked) = (
        sent.load(Ordering::SeqCst) as i64,
        acked.load(Ordering::SeqCst) as i64,
    );
    let final_count = int(redis.query(&["GET", "n"]));
    eprintln!(
        "shutdown under load: {finished} in flight finished; sent {sent}, acked {acked}, final {final_count}"
    );
    assert!(
        acked <= final_count && final_count <= sent,
        "acked {acked} <= final {final_count} <= sent {sent} does not hold"
    );
}
