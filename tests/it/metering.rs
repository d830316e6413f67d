//! Metering and quotas: exact caps under concurrency, Upstash's 429 texts with `Retry-After`,
//! usage kept in Redis across restarts and shared by two instances, out of the tenants'
//! reach, day and month roll-over (moved clock), the rate limit, quota alerts through a
//! signed webhook, and `/usage` behind the admin token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::harness::{Gateway, TestRedis};

const A: &str = "tok-acme";
const B: &str = "tok-beta";
const ADMIN: &str = "admin-secret";

/// Tenants acme (db 1) and beta (db 2) on `url`, with `extra` TOML (quotas, alerts).
fn config(dir: &tempfile::TempDir, url: &str, extra: &str, acme_quota: &str) -> restdis::cli::Cli {
    let file = dir.path().join("metering.toml");
    std::fs::write(
        &file,
        format!(
            "{extra}\n[tenants.acme]\ntokens = [\"{A}\"]\nredis_url = \"{url}\"\ndb = 1\n\
             [tenants.acme.quota]\n{acme_quota}\n\n\
             [tenants.beta]\ntokens = [\"{B}\"]\nredis_url = \"{url}\"\ndb = 2\n"
        ),
    )
    .unwrap();
    restdis::cli::Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(file),
        admin_token: Some(ADMIN.into()),
        ..Default::default()
    }
}

async fn usage(gw: &Gateway) -> Value {
    let resp = gw
        .http
        .get(format!("{}/usage", gw.admin))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn tenant<'a>(usage: &'a Value, name: &str) -> &'a Value {
    usage["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == name)
        .unwrap()
}

/// Redis, the config's folder and a gateway whose tenant acme has `acme_quota`.
async fn gateway(acme_quota: &str) -> (TestRedis, tempfile::TempDir, Gateway) {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(config(&dir, &redis.url(), "", acme_quota)).await;
    (redis, dir, gw)
}

/// Keys in database `db`, asked directly.
fn dbsize(redis: &TestRedis, db: i64) -> i64 {
    let client = redis::Client::open(format!("{}/{db}", redis.url())).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("DBSIZE").query(&mut conn).unwrap()
}

/// `n` PINGs as acme; how many were answered 200.
async fn pings(gw: &Gateway, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if gw.post_as(A, "/", json!(["PING"])).await.0 == 200 {
            ok += 1;
        }
    }
    ok
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn caps_are_exact_under_concurrency_and_refusals_look_like_upstash() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Arc::new(Gateway::start_with(config(&dir, &redis.url(), "", "daily_commands = 100")).await);
    // A pipeline that would cross the cap is refused whole.
    let big: Vec<Value> = (0..101).map(|i| json!(["SET", format!("k{i}"), "v"])).collect();
    let (status, body) = gw.post_as(A, "/pipeline", Value::Array(big)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body,
        json!({"error": "ERR max daily request limit exceeded. Limit: 100, Usage: 0"})
    );
    assert_eq!(dbsize(&redis, 1), 0);
    // 32 clients race for the 100 commands: exactly 100 are admitted.
    let mut tasks = Vec::new();
    for c in 0..32 {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            for i in 0..8 {
                let (status, _) = gw.post_as(A, "/", json!(["INCR", format!("n{c}-{i}")])).await;
                match status {
                    200 => ok += 1,
                    429 => refused += 1,
                    other => panic!("status {other}"),
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        refused += r;
    }
    assert_eq!((ok, refused), (100, 156));
    // Nothing of a refused request reached Redis: 100 keys, one per admitted INCR.
    assert_eq!(dbsize(&redis, 1), 100);
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(A)
        .json(&json!(["GET", "x"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    // The other tenant is not affected; the usage endpoint says what happened.
    assert_eq!(gw.post_as(B, "/", json!(["DBSIZE"])).await.0, 200);
    let report = usage(&gw).await;
    let acme = tenant(&report, "acme");
    assert_eq!(acme["day"]["commands"], 100);
    assert_eq!(acme["limits"]["daily_commands"], 100);
    assert_eq!(acme["limits"]["monthly_commands"], Value::Null);
    assert_eq!(
        acme["thresholds_crossed"],
        json!([{"quota": "daily_commands", "threshold": 0.8}, {"quota": "daily_commands", "threshold": 1.0}])
    );
    assert!(acme["day"]["resets_at"].as_str().unwrap().ends_with("T00:00:00Z"));
    // The admin listener wants its token for /usage and /metrics, not for probes.
    let open = |path: &str| gw.http.get(format!("{}{path}", gw.admin)).send();
    assert_eq!(open("/usage").await.unwrap().status(), 401);
    assert_eq!(open("/metrics").await.unwrap().status(), 401);
    assert_eq!(open("/healthz").await.unwrap().status(), 200);
    assert_eq!(open("/readyz").await.unwrap().status(), 200);
}

#[tokio::test]
async fn usage_survives_a_restart_is_shared_and_tenants_cannot_reach_it() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let cli = || config(&dir, &redis.url(), "", "daily_commands = 50");
    let first = Gateway::start_with(cli()).await;
    let second = Gateway::start_with(cli()).await;
    for i in 0..20 {
        assert_eq!(
            first
                .post_as(A, "/", json!(["SET", format!("k{i}"), "v"]))
                .await
                .0,
            200
        );
    }
    // The other instance sees the first one's usage within a flush or two.
    wait_for("the second instance sees 20 commands", async || {
        tenant(&usage(&second).await, "acme")["day"]["commands"] == 20
    })
    .await;
    for _ in 0..10 {
        assert_eq!(second.post_as(A, "/", json!(["GET", "k1"])).await.0, 200);
    }
    // Whatever the tenant does to its own database, usage stays.
    assert_eq!(first.post_as(A, "/", json!(["FLUSHDB"])).await.0, 200);
    let (status, _) = first.post_as(A, "/", json!(["FLUSHALL"])).await;
    assert_eq!(status, 400);
    let (status, body) = first
        .post_as(
            A,
            "/",
            json!([
                "EVAL",
                "redis.call('SELECT', 15) return redis.call('KEYS', '*')",
                "0"
            ]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, keys) = first.post_as(A, "/", json!(["SCAN", "0", "COUNT", "1000"])).await;
    assert_eq!(
        keys["result"][1],
        json!([]),
        "no usage key in the tenant's database"
    );
    // A restart (both instances) keeps the day's count.
    first.shutdown().await;
    second.shutdown().await;
    let third = Gateway::start_with(cli()).await;
    let acme = tenant(&usage(&third).await, "acme").clone();
    // Every command admitted counts, refused by the policy or not (as Upstash bills).
    assert_eq!(
        acme["day"]["commands"], 34,
        "20 SET + 10 GET + FLUSHDB + FLUSHALL + EVAL + SCAN"
    );
    assert_eq!(acme["month"]["commands"], 34);
    // What is left of the cap is what the earlier instances left.
    assert_eq!(pings(&third, 17).await, 16);
    let (status, body) = third.post_as(A, "/", json!(["PING"])).await;
    assert_eq!(status, 429, "{body}");
    // Usage lives in database 15, where only restdis goes.
    assert!(dbsize(&redis, 15) >= 2, "a day and a month hash");
}

#[tokio::test]
async fn a_new_day_and_a_new_month_start_from_zero() {
    let (_redis, _dir, gw) = gateway("daily_commands = 3\nmonthly_commands = 5").await;
    let clock = gw.state().metering.clock.clone();
    assert_eq!(pings(&gw, 4).await, 3, "3 a day");
    let (_, body) = gw.post_as(A, "/", json!(["PING"])).await;
    assert_eq!(
        body["error"],
        "ERR max daily request limit exceeded. Limit: 3, Usage: 3"
    );
    let month = |c: &restdis::metering::Clock| restdis::metering::quota::Period::of(false, c.now()).index;
    let before = month(&clock);
    clock.advance(Duration::from_secs(86_400));
    if month(&clock) == before {
        assert_eq!(pings(&gw, 4).await, 2, "the month allows 2 more");
        let (_, body) = gw.post_as(A, "/", json!(["PING"])).await;
        assert_eq!(
            body["error"],
            "ERR max requests limit exceeded. Limit: 5, Usage: 5"
        );
    } else {
        // The test runs on a month's last day: the next day is a new month too.
        assert_eq!(pings(&gw, 4).await, 3);
    }
    // 40 days later it is another month (and another day).
    clock.advance(Duration::from_secs(40 * 86_400));
    assert_eq!(pings(&gw, 4).await, 3);
    let report = usage(&gw).await;
    assert_eq!(tenant(&report, "acme")["month"]["commands"], 3);
}

#[tokio::test]
async fn the_rate_limit_allows_the_burst_then_answers_429() {
    let (_redis, _dir, gw) = gateway("requests_per_second = 1\nburst = 3").await;
    for _ in 0..3 {
        assert_eq!(gw.post_as(A, "/", json!(["PING"])).await.0, 200);
    }
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(A)
        .json(&json!(["PING"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "ERR max requests per second limit exceeded. Limit: 1, Usage: 3"
    );
    // Beta has no limit.
    for _ in 0..10 {
        assert_eq!(gw.post_as(B, "/", json!(["PING"])).await.0, 200);
    }
}

#[tokio::test]
async fn alerts_fire_once_per_threshold_with_a_valid_signature() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, mut hooks) = crate::harness::webhook_receiver().await;
    let alerts = format!("[alerts]\nwebhook_url = \"{url}\"\nwebhook_secret = \"s3cret\"\n");
    let gw = Gateway::start_with(config(&dir, &redis.url(), &alerts, "daily_commands = 10")).await;
    let next = async |hooks: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>| {
        let (sig, body) = tokio::time::timeout(Duration::from_secs(10), hooks.recv())
            .await
            .expect("no alert within 10 s")
            .unwrap();
        assert_eq!(
            sig,
            restdis::metering::alerts::sign(b"s3cret", &body),
            "signature"
        );
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    for _ in 0..8 {
        assert_eq!(gw.post_as(A, "/", json!(["PING"])).await.0, 200);
    }
    let first = next(&mut hooks).await;
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["quota"], "daily_commands");
    assert_eq!(
        (first["limit"].clone(), first["usage"].clone()),
        (json!(10), json!(8))
    );
    assert_eq!(first["threshold"], 0.8);
    assert_eq!(first["period"].as_str().unwrap().len(), 10, "YYYY-MM-DD");
    for _ in 0..5 {
        gw.post_as(A, "/", json!(["PING"])).await;
    }
    let second = next(&mut hooks).await;
    assert_eq!(
        (second["threshold"].clone(), second["usage"].clone()),
        (json!(1.0), json!(10))
    );
    // No repeat: more refused requests and a few more flushes bring nothing.
    for _ in 0..5 {
        assert_eq!(gw.post_as(A, "/", json!(["PING"])).await.0, 429);
    }
    let nothing = tokio::time::timeout(Duration::from_millis(2500), hooks.recv()).await;
    assert!(nothing.is_err(), "an alert fired twice: {nothing:?}");
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.admin))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "restdis_alerts_total{quota=\"daily_commands\",tenant=\"acme\",threshold=\"0.8\"} 1",
        "restdis_alerts_total{quota=\"daily_commands\",tenant=\"acme\",threshold=\"1\"} 1",
        "restdis_webhook_deliveries_total{result=\"ok\"} 2",
        "restdis_tenant_rejected_total{reason=\"daily_commands\",tenant=\"acme\"} 8",
        "restdis_tenant_commands_total{tenant=\"acme\"} 10",
        "restdis_quota_used_ratio{quota=\"daily_commands\",tenant=\"acme\"} 1",
        "restdis_quota_limit{quota=\"daily_commands\",tenant=\"acme\"} 10",
    ] {
        assert!(metrics.contains(line), "missing {line}");
    }
}
