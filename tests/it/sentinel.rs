//! restdis in front of a real Sentinel group (a primary, a replica, three sentinels on free
//! loopback ports, [`TestSentinel`]): commands reach the primary; `SENTINEL FAILOVER` and a
//! primary killed with SIGKILL under load give only JSON 503/504 errors, acknowledged <= final
//! <= sent, and full service afterwards. Timings are printed, never asserted.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{failover_under_load, Acked};
use restdis::backend::replicas::After;

use crate::harness::{cli_for_url, wait_for, Gateway, TestSentinel};

async fn gateway(group: &TestSentinel) -> Gateway {
    let mut cli = cli_for_url(group.url());
    cli.command_timeout = Some("3s".into());
    Gateway::start_with(cli).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_primary_sentinel_names() {
    let group = TestSentinel::start();
    let gw = gateway(&group).await;
    assert_eq!(
        gw.cmd(json!(["SET", "k", "v"])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(group.data[0].text(&["GET", "k"]), "v");
    assert_eq!(
        gw.pipeline(json!([["INCR", "n"], ["INCR", "n"]])).await.1,
        json!([{"result": 1}, {"result": 2}])
    );
    assert_eq!(
        gw.multi(json!([["INCR", "n"], ["GET", "n"]])).await.1[1],
        json!({"result": "3"})
    );
    let backend = gw.backend();
    let sentinel = backend.sentinel().expect("a sentinel backend");
    assert_eq!(sentinel.primary(), Some(group.data[0].addr()));
    // --check-config names the mode and the primary; a bad URL: one line, exit 2.
    let out = crate::harness::check_config(&group.url());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "sentinel mode, master mymaster is {}",
            group.data[0].addr()
        )),
        "{text}"
    );
    let out = crate::harness::check_config("redis+sentinel://127.0.0.1:1");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MASTER_NAME"));
    gw.shutdown().await;
}

/// Waits for the sentinels to name a primary other than `old`; the moment they did.
fn wait_switch(group: &TestSentinel, old: u16) -> Instant {
    wait_for(Duration::from_secs(30), "+switch-master", || {
        group.primary_port().is_some_and(|p| p != old)
    });
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load() {
    let group = std::sync::Arc::new(TestSentinel::start());
    let gw = gateway(&group).await;
    let g = group.clone();
    let (errors, after) = failover_under_load(&gw, Acked::Kept, move || {
        let old = g.primary_port().unwrap();
        g.failover();
        wait_switch(&g, old)
    })
    .await;
    let new = group.primary_port().unwrap();
    assert_eq!(
        gw.backend().sentinel().unwrap().primary(),
        Some(format!("127.0.0.1:{new}"))
    );
    println!("SENTINEL FAILOVER: {errors} errors, last {after:?} after +switch-master");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_under_sentinel_recovers() {
    let group = std::sync::Arc::new(TestSentinel::start());
    let gw = gateway(&group).await;
    let g = group.clone();
    let (errors, after) = failover_under_load(&gw, Acked::MayBeLost, move || {
        let old = g.primary_port().unwrap();
        g.data.iter().find(|n| n.port == old).unwrap().crash();
        wait_switch(&g, old)
    })
    .await;
    println!("killed primary under Sentinel: {errors} errors, last {after:?} after +switch-master");
    gw.shutdown().await;
}

/// restdis reading from the group's replica (`read_from = "replicas"`), once it uses it.
async fn replica_gateway(group: &TestSentinel) -> Gateway {
    let mut cli = cli_for_url(group.url());
    cli.command_timeout = Some("3s".into());
    cli.read_from = Some("replicas".into());
    let gw = Gateway::start_with(cli).await;
    let backend = gw.backend();
    let started = Instant::now();
    while backend
        .sentinel()
        .and_then(|s| s.replicas())
        .and_then(|r| r.pick(&After::Any))
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replica was never used"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw
}

/// A POST of one command with an optional `upstash-sync-token`: status, body, the response's token.
pub(crate) async fn with_token(
    gw: &Gateway,
    cmd: serde_json::Value,
    token: Option<&str>,
) -> (u16, serde_json::Value, String) {
    let mut req = gw
        .http
        .post(&gw.url)
        .bearer_auth(crate::harness::TOKEN)
        .json(&cmd);
    if let Some(t) = token {
        req = req.header("upstash-sync-token", t);
    }
    let resp = req.send().await.unwrap();
    let token = resp
        .headers()
        .get("upstash-sync-token")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, body) = crate::harness::status_json(resp).await;
    (status, body, token)
}

/// `pairs` SET -> GET pairs per client, 8 clients, each GET carrying its SET's token, keys
/// spread over every shard: the number of stale reads.
pub(crate) async fn read_your_writes(gw: &std::sync::Arc<Gateway>, pairs: usize, tag: &str) -> usize {
    let mut tasks = Vec::new();
    for c in 0..8 {
        let gw = gw.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut stale = 0;
            for i in 0..pairs {
                let key = format!("{tag}:{c}:{}", i % 64);
                let value = format!("{i}");
                let (status, body, token) = with_token(&gw, json!(["SET", key, value]), None).await;
                assert_eq!(status, 200, "SET {key}: {body}");
                let (status, body, _) = with_token(&gw, json!(["GET", key]), Some(&token)).await;
                assert_eq!(status, 200, "GET {key} ({token}): {body}");
                if body != json!({"result": value}) {
                    stale += 1;
                }
            }
            stale
        }));
    }
    let mut stale = 0;
    for t in tasks {
        stale += t.await.unwrap();
    }
    stale
}

/// `GET` calls a node has served so far (`INFO commandstats`).
pub(crate) fn gets_served(node: &crate::harness::TestNode) -> u64 {
    let stats = node.text(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tokens_give_read_your_writes_from_replicas() {
    let group = TestSentinel::start();
    let gw = replica_gateway(&group).await;
    let replica = &group.data[1];
    // A replica that does not apply the primary's stream (paused for writes) but still serves
    // reads: a read without a token sees its old state, a read with the write's token does not.
    assert_eq!(replica.text(&["CLIENT", "PAUSE", "20000", "WRITE"]), "OK");
    let (_, _, token) = with_token(&gw, json!(["SET", "lagged", "new"]), None).await;
    assert!(token.starts_with("rp1."), "{token}");
    assert_eq!(
        with_token(&gw, json!(["GET", "lagged"]), None).await.1,
        json!({"result": null})
    );
    assert_eq!(
        with_token(&gw, json!(["GET", "lagged"]), Some(&token)).await.1,
        json!({"result": "new"})
    );
    // A token in the position format that does not parse: the primary.
    assert_eq!(
        with_token(&gw, json!(["GET", "lagged"]), Some("rp1.not-hex"))
            .await
            .1,
        json!({"result": "new"})
    );
    assert_eq!(replica.text(&["CLIENT", "UNPAUSE"]), "OK");

    // 10,000 SET -> GET pairs, each GET carrying its SET's token, 8 clients at once.
    let before = gets_served(replica);
    let gw = std::sync::Arc::new(gw);
    let stale = read_your_writes(&gw, 1250, "ryw").await;
    let by_replica = gets_served(replica) - before;
    println!(
        "read-your-writes: 10000 SET->GET pairs, {stale} stale, {by_replica} GETs served by the replica"
    );
    assert_eq!(stale, 0);
    if let Ok(gw) = std::sync::Arc::try_unwrap(gw) {
        gw.shutdown().await;
    }
}

/// A node's replication offset as its `INFO replication` says (`master_repl_offset` on a
/// primary, `slave_repl_offset` on a replica).
fn repl_offset(node: &crate::harness::TestNode, field: &str) -> u64 {
    node.text(&["INFO", "replication"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// restdis in front of `url` reading from replicas, with dedicated blocking connections (the
/// directory holds its config file).
pub(crate) async fn dedicated_replica_gateway(url: String) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = cli_for_url(url);
    cli.command_timeout = Some("3s".into());
    cli.read_from = Some("replicas".into());
    cli.config = Some(crate::streams::config_file(
        &dir,
        "[blocking]\nmode = \"dedicated\"\npool_size = 2\nmax_timeout = \"5s\"\n",
    ));
    (Gateway::start_with(cli).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_blocking_write_moves_the_sync_token_on() {
    let group = TestSentinel::start();
    let (gw, _dir) = dedicated_replica_gateway(group.url()).await;
    let (primary, replica) = (&group.data[0], &group.data[1]);
    assert_eq!(gw.cmd(json!(["RPUSH", "src", "x"])).await.0, 200);
    // The replica has the RPUSH, and restdis knows it (every worker's backend).
    let offset = repl_offset(primary, "master_repl_offset");
    let backends = gw.state().every_backend();
    let started = Instant::now();
    while !backends.iter().all(|b| {
        b.sentinel()
            .and_then(|s| s.replicas())
            .is_some_and(|r| r.pick(&After::At(offset)).is_some())
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replica never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then the replica stops applying writes, and BLMOVE runs on a dedicated connection: its
    // response's token must cover its write, so a read with it is not served by the replica.
    assert_eq!(replica.text(&["CLIENT", "PAUSE", "20000", "WRITE"]), "OK");
    let (status, body, token) =
        with_token(&gw, json!(["BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"]), None).await;
    assert_eq!((status, body), (200, json!({"result": "x"})));
    let (_, body, _) = with_token(&gw, json!(["LRANGE", "dst", "0", "-1"]), Some(&token)).await;
    assert_eq!(
        body,
        json!({"result": ["x"]}),
        "a stale read after BLMOVE (token {token})"
    );
    assert_eq!(replica.text(&["CLIENT", "UNPAUSE"]), "OK");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_reads_go_to_replicas_and_survive_a_killed_replica() {
    let group = TestSentinel::start();
    let gw = std::sync::Arc::new(replica_gateway(&group).await);
    // Once restdis reads from the replica (the sentinels see its link up): --check-config names the replicas reads go to; one Redis with read_from = replicas: exit 2.
    let check = |url: &str| {
        std::process::Command::new(crate::harness::binary())
            .args([
                "--check-config",
                "--token",
                "t",
                "--read-from",
                "replicas",
                "--redis-url",
                url,
            ])
            .output()
            .unwrap()
    };
    let out = check(&group.url());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("reads from replicas: {}", group.data[1].addr())),
        "{text}"
    );
    let out = check(&format!("redis://{}", group.data[0].addr()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a redis+sentinel:// or redis+cluster:// URL")
    );
    let (_, _, token) = with_token(&gw, json!(["SET", "k", "v"]), None).await;
    // Written before the load starts: every read must see it, wherever it is served.
    with_token(&gw, json!(["GET", "k"]), Some(&token)).await;
    let load = |gw: std::sync::Arc<Gateway>,
                reads: usize,
                done: std::sync::Arc<std::sync::atomic::AtomicUsize>| async move {
        let mut failed = 0;
        for _ in 0..reads {
            let (status, body, _) = with_token(&gw, json!(["GET", "k"]), None).await;
            if (status, body) != (200, json!({"result": "v"})) {
                failed += 1;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        failed
    };
    wait_for(Duration::from_secs(10), "the replica to have k", || {
        group.data[1].text(&["GET", "k"]) == "v"
    });
    let before = (gets_served(&group.data[0]), gets_served(&group.data[1]));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(load(gw.clone(), 250, done.clone())))
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap();
    }
    let primary = gets_served(&group.data[0]) - before.0;
    let replica = gets_served(&group.data[1]) - before.1;
    println!("plain reads: 2000 GETs, {replica} served by the replica, {primary} by the primary");
    assert_eq!(failed, 0);
    assert!(
        replica > 1000,
        "only {replica} of 2000 GETs were served by the replica"
    );
    let counted = gw
        .metric(r#"restdis_redis_reads_total{backend="default",served_by="replica"}"#)
        .await;
    assert!(
        counted >= replica as f64,
        "the metric counts {counted} replica reads"
    );

    // The replica killed in the middle of a read load: every read still answered.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(load(gw.clone(), 300, done.clone())))
        .collect();
    let started = Instant::now();
    while done.load(std::sync::atomic::Ordering::Relaxed) < 400 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the read load stalled"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    group.data[1].crash();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap();
    }
    println!("replica killed under a read load: {failed} of 2400 GETs failed");
    assert_eq!(failed, 0);
    if let Ok(gw) = std::sync::Arc::try_unwrap(gw) {
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_follow_a_failover_and_tokens_stay_unique() {
    let group = TestSentinel::start();
    let gw = replica_gateway(&group).await;
    // Every response a token of its own, also for concurrent writes (the clients' tests check it).
    let (a, b, c) = tokio::join!(
        with_token(&gw, json!(["SET", "a", "1"]), None),
        with_token(&gw, json!(["SET", "b", "1"]), None),
        with_token(&gw, json!(["SET", "c", "1"]), None)
    );
    assert!(a.2 != b.2 && b.2 != c.2 && a.2 != c.2, "{} {} {}", a.2, b.2, c.2);
    let positions = |t: &str| restdis::backend::replicas::after(Some(t.as_bytes()));
    // A pipeline, a transaction and a script that write move the position on.
    let mut last = positions(&c.2);
    for (path, body) in [
        ("/pipeline", json!([["SET", "k", "p"], ["GET", "k"]])),
        ("/multi-exec", json!([["SET", "k", "m"], ["GET", "k"]])),
        (
            "/",
            json!([
                "EVAL",
                "return redis.call('SET', KEYS[1], ARGV[1])",
                "1",
                "k",
                "e"
            ]),
        ),
    ] {
        let resp = gw
            .http
            .post(format!("{}{path}", gw.url))
            .bearer_auth(crate::harness::TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let token = resp.headers()["upstash-sync-token"].to_str().unwrap().to_string();
        let now = positions(&token);
        assert!(
            matches!((&last, &now), (After::At(x), After::At(y)) if y > x),
            "{path}: {last:?} then {now:?}"
        );
        last = now;
    }

    // SENTINEL FAILOVER: the old primary comes back as the replica that reads go to.
    let old = group.primary_port().unwrap();
    group.failover();
    wait_switch(&group, old);
    let backend = gw.backend();
    let replicas = backend.sentinel().and_then(|s| s.replicas()).unwrap();
    let started = Instant::now();
    while replicas.addrs() != [format!("127.0.0.1:{old}")] || replicas.pick(&After::Any).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demoted primary was never read from: {:?}",
            replicas.addrs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let demoted = group.data.iter().find(|n| n.port == old).unwrap();
    let before = gets_served(demoted);
    for i in 0..200 {
        let value = i.to_string();
        let (status, _, token) = with_token(&gw, json!(["SET", "after", value]), None).await;
        assert_eq!(status, 200);
        let (_, body, _) = with_token(&gw, json!(["GET", "after"]), Some(&token)).await;
        assert_eq!(body, json!({"result": value}));
    }
    let served = gets_served(demoted) - before;
    println!("after a failover: {served} of 200 GETs served by the demoted primary, now a replica");
    assert!(served > 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_two_databases_behind_one_sentinel_group_stay_isolated_across_a_failover() {
    let group = TestSentinel::start();
    let dir = tempfile::tempdir().unwrap();
    // One tenant names its database with `db`, the other in the URL.
    let gw = Gateway::start_with(crate::harness::cli_for_toml(
        &dir,
        &format!(
            "command_timeout = \"3s\"\n[tenants.a]\ntokens = [\"tok-a\"]\nredis_url = \"{url}\"\ndb = 1\n\n\
             [tenants.b]\ntokens = [\"tok-b\"]\nredis_url = \"{url}/2\"\n",
            url = group.url()
        ),
    ))
    .await;
    let attack = json!([
        "EVAL",
        "redis.call('SELECT', 2) return redis.call('GET', 'secret')",
        "0"
    ]);
    let check = |when: &'static str| {
        let gw = &gw;
        let attack = attack.clone();
        async move {
            assert_eq!(
                gw.post_as("tok-b", "/", json!(["GET", "secret"])).await.1,
                json!({"result": "b-data"}),
                "{when}"
            );
            assert_eq!(
                gw.post_as("tok-a", "/", json!(["GET", "secret"])).await.1,
                json!({"result": null}),
                "{when}: a's database is its own"
            );
            let (status, body) = gw.post_as("tok-a", "/", attack).await;
            assert_eq!(status, 400, "{when}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("can't run this command")),
                "{when}: {body}"
            );
        }
    };
    assert_eq!(
        gw.post_as("tok-b", "/", json!(["SET", "secret", "b-data"]))
            .await
            .0,
        200
    );
    // Where the data landed: database 2 of the primary.
    assert!(group.data[0].text(&["INFO", "keyspace"]).contains("db2:keys=1"));
    check("before the failover").await;
    // A failover: the promoted replica never had a restdis connection; the first one makes
    // the tenants' ACL users there.
    let old = group.primary_port().unwrap();
    group.failover();
    wait_switch(&group, old);
    let started = Instant::now();
    while gw.post_as("tok-a", "/", json!(["SET", "mine", "a"])).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "tenant a never reached the new primary"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check("after the failover").await;
    gw.shutdown().await;
}

#[tokio::test]
async fn tenants_on_a_sentinel_group_not_found_at_start_are_isolated_without_touching_sentinels() {
    // Real sentinels, but a master name they do not know: the group's primary cannot be asked
    // at start. The tenants still get ACL users (made by their first data connections), and
    // nothing is made on the sentinels themselves.
    let group = TestSentinel::start();
    let url = group.url().replace("/mymaster", "/nosuchmaster");
    let dir = tempfile::tempdir().unwrap();
    let cli = crate::harness::cli_for_toml(
        &dir,
        &format!(
            "[tenants.a]\ntokens = [\"tok-a\"]\nredis_url = \"{url}/1\"\n\n\
             [tenants.b]\ntokens = [\"tok-b\"]\nredis_url = \"{url}/2\"\n"
        ),
    );
    let config = restdis::config::Config::resolve(&cli, &Default::default()).unwrap();
    let server = restdis::server::Server::start_with(config, None).await.unwrap();
    let backends = server.state.tenancy().backends.clone();
    assert_eq!(backends.len(), 2);
    assert!(backends.iter().all(|b| b.isolation().is_some()));
    for sentinel in &group.sentinels {
        let users = format!("{:?}", sentinel.query(&["ACL", "USERS"]).unwrap());
        assert!(
            !users.contains("restdis"),
            "ACL users made on a sentinel: {users}"
        );
    }
    server.shutdown().await;
}
