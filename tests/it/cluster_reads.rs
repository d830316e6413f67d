//! restdis reading from a Redis Cluster's replicas (`read_from = "replicas"`, 3 primaries and
//! 3 replicas, [`TestCluster`]): `rc1.` sync tokens give read-your-writes per shard (also
//! through a second restdis instance, and across a `CLUSTER FAILOVER`), plain reads are
//! served by the replicas, and a killed replica fails no read. Counts are printed; the
//! assertions are on correctness (0 stale, 0 failed) and on where most reads went.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{cli_for_cluster, wait_for, Gateway, TestCluster, TestNode};
use crate::sentinel::{gets_served, read_your_writes, with_token};

/// restdis reading from the cluster's replicas, once every shard's replica serves reads.
async fn replica_gateway(cluster: &TestCluster) -> Gateway {
    let mut cli = cli_for_cluster(cluster);
    cli.command_timeout = Some("3s".into());
    cli.read_from = Some("replicas".into());
    let gw = Gateway::start_with(cli).await;
    let started = Instant::now();
    // Every worker's backend (`RESTDIS_TEST_WORKERS`) has its own connections and positions.
    while gw
        .state()
        .every_backend()
        .iter()
        .any(|b| b.cluster().map_or(0, |c| c.readable_shards()) < 3)
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the replicas were never used"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw
}

/// The nodes serving as replicas now.
fn replicas(cluster: &TestCluster) -> Vec<&TestNode> {
    cluster.nodes.iter().filter(|n| !n.is_primary()).collect()
}

/// `GET`s served by `nodes`, summed.
fn served(nodes: &[&TestNode]) -> u64 {
    nodes.iter().map(|n| gets_served(n)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sync_tokens_give_read_your_writes_from_replicas() {
    let cluster = TestCluster::start();
    let gw = replica_gateway(&cluster).await;
    // Replicas that do not apply their primaries' streams (paused for writes) but still serve
    // reads: a read without a token sees the old state, a read with the write's token does not.
    for r in replicas(&cluster) {
        assert_eq!(r.text(&["CLIENT", "PAUSE", "20000", "WRITE"]), "OK");
    }
    // Each request carries the last response's token, as the clients do (with several
    // workers, a response names the positions its worker knows and the request's token's).
    let mut last = String::new();
    for key in ["lag:a", "lag:b", "lag:c", "lag:d"] {
        let (status, _, token) = with_token(&gw, json!(["SET", key, "new"]), Some(&last)).await;
        assert_eq!(status, 200);
        assert!(token.starts_with("rc1."), "{token}");
        // Every shard is named: three `node:offset` entries.
        assert_eq!(token.split('.').nth(1).unwrap().split(',').count(), 3, "{token}");
        last = token;
        assert_eq!(
            with_token(&gw, json!(["GET", key]), None).await.1,
            json!({"result": null}),
            "a read without a token is served by the lagging replica"
        );
    }
    for key in ["lag:a", "lag:b", "lag:c", "lag:d"] {
        assert_eq!(
            with_token(&gw, json!(["GET", key]), Some(&last)).await.1,
            json!({"result": "new"})
        );
    }
    let (_, body, _) = with_token(
        &gw,
        json!(["MGET", "lag:a", "lag:b", "lag:c", "lag:d"]),
        Some(&last),
    )
    .await;
    assert_eq!(body, json!({"result": ["new", "new", "new", "new"]}));
    // A token in the cluster format that does not parse, or one from a Sentinel group: the
    // primaries.
    for bad in ["rc1.zz:1.x", "rp1.10.x"] {
        assert_eq!(
            with_token(&gw, json!(["GET", "lag:a"]), Some(bad)).await.1,
            json!({"result": "new"}),
            "{bad}"
        );
    }

    // Another restdis instance in front of the same cluster understands the token, and its
    // response carries the positions forward: the client's next read through it, with that
    // response's token, still sees the write.
    let other = replica_gateway(&cluster).await;
    let (_, _, token) = with_token(&gw, json!(["SET", "lag:e", "new"]), None).await;
    let (_, body, forward) = with_token(&other, json!(["GET", "lag:e"]), Some(&token)).await;
    assert_eq!(body, json!({"result": "new"}));
    let (_, body, _) = with_token(&other, json!(["GET", "lag:e"]), Some(&forward)).await;
    assert_eq!(
        body,
        json!({"result": "new"}),
        "the token was not carried forward ({forward})"
    );
    other.shutdown().await;
    for r in replicas(&cluster) {
        assert_eq!(r.text(&["CLIENT", "UNPAUSE"]), "OK");
    }

    // 10,000 SET -> GET pairs, each GET carrying its SET's token, 8 clients at once.
    let replica_nodes = replicas(&cluster);
    let before = served(&replica_nodes);
    let gw = Arc::new(gw);
    let started = Instant::now();
    let stale = read_your_writes(&gw, 1250, "ryw").await;
    let by_replicas = served(&replica_nodes) - before;
    println!(
        "cluster read-your-writes: 10000 SET->GET pairs in {:?}, {stale} stale, {by_replicas} GETs served by replicas",
        started.elapsed()
    );
    assert_eq!(stale, 0);

    // A graceful failover of one shard: tokens naming its old primary send that shard's reads
    // to the new one until responses name it; still 0 stale.
    let replica = cluster.replica_of(cluster.primary_of(0));
    replica.promote();
    // A loaded machine can make the nodes flag each other while the roles change
    // (`CLUSTERDOWN`, a JSON 503 by design): the pairs start once the cluster is healthy again.
    cluster.wait_healthy();
    let stale = read_your_writes(&gw, 100, "after").await;
    println!("cluster read-your-writes after a CLUSTER FAILOVER: 800 pairs, {stale} stale");
    assert_eq!(stale, 0);
    if let Ok(gw) = Arc::try_unwrap(gw) {
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_plain_reads_go_to_replicas_and_survive_a_killed_replica() {
    let cluster = TestCluster::start();
    let gw = Arc::new(replica_gateway(&cluster).await);
    let keys: Vec<String> = (0..30).map(|i| format!("plain:{i}")).collect();
    for k in &keys {
        assert_eq!(gw.cmd(json!(["SET", k, "v"])).await.0, 200);
    }
    let replica_nodes = replicas(&cluster);
    let dbsize = |nodes: &[&TestNode]| -> i64 {
        nodes
            .iter()
            .map(|n| match n.query(&["DBSIZE"]) {
                Ok(redis::Value::Int(k)) => k,
                _ => 0,
            })
            .sum()
    };
    let primaries: Vec<&TestNode> = cluster.nodes.iter().filter(|n| n.is_primary()).collect();
    wait_for(Duration::from_secs(10), "the replicas to have the keys", || {
        dbsize(&replica_nodes) == dbsize(&primaries)
    });
    // --check-config names the replicas.
    wait_for(
        Duration::from_secs(10),
        "--check-config to list 3 replicas",
        || {
            let out = std::process::Command::new(crate::harness::binary())
                .args(["--check-config", "--token", "t", "--read-from", "replicas"])
                .args(["--redis-url", &cluster.url()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout)
                .contains("3 replica(s), 16384/16384 slots covered, reads from the replicas")
        },
    );
    let load = |gw: Arc<Gateway>, reads: usize, done: Arc<AtomicUsize>, keys: Vec<String>| async move {
        let mut failed = 0;
        for i in 0..reads {
            let (status, body, _) = with_token(&gw, json!(["GET", keys[i % keys.len()]]), None).await;
            if (status, body) != (200, json!({"result": "v"})) {
                failed += 1;
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        failed
    };
    let before = (served(&primaries), served(&replica_nodes));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(load(gw.clone(), 250, done.clone(), keys.clone())))
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap();
    }
    let by_primaries = served(&primaries) - before.0;
    let by_replicas = served(&replica_nodes) - before.1;
    println!("cluster plain reads: 2000 GETs, {by_replicas} served by replicas, {by_primaries} by primaries");
    assert_eq!(failed, 0);
    assert!(
        by_replicas > 1000,
        "only {by_replicas} of 2000 GETs were served by replicas"
    );
    // A read-only /pipeline over every shard: the replicas; one with a write: the primaries.
    let before = served(&replica_nodes);
    let (status, body) = gw
        .pipeline(json!([
            ["GET", "plain:0"],
            ["GET", "plain:1"],
            ["GET", "plain:2"],
            ["GET", "plain:3"]
        ]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&replica_nodes) - before, 4);
    let before = served(&replica_nodes);
    let (status, _) = gw
        .pipeline(json!([
            ["GET", "plain:0"],
            ["SET", "plain:x", "v"],
            ["GET", "plain:2"]
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(served(&replica_nodes) - before, 0);

    // A replica killed in the middle of a read load: every read still answered.
    let victim = replica_nodes[0].port;
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(load(gw.clone(), 300, done.clone(), keys.clone())))
        .collect();
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < 400 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the read load stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.nodes.iter().find(|n| n.port == victim).unwrap().crash();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap();
    }
    println!("cluster plain reads: a replica killed during 2400 GETs, {failed} failed");
    assert_eq!(failed, 0);
    if let Ok(gw) = Arc::try_unwrap(gw) {
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_blocking_write_moves_the_shard_position_on() {
    let cluster = TestCluster::start();
    let (gw, _dir) = crate::sentinel::dedicated_replica_gateway(cluster.url()).await;
    assert_eq!(gw.cmd(json!(["RPUSH", "{q}src", "x"])).await.0, 200);
    let primary = cluster.primary_of(restdis::backend::cluster::slot::key_slot(b"{q}src"));
    let key = restdis::backend::replicas::node_key(&primary.id()).unwrap();
    let before: u64 = primary
        .text(&["INFO", "replication"])
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    // BLMOVE runs on a dedicated connection to that primary; its response's token names the
    // shard at a position past the primary's offset before it (its own write).
    let (status, body, token) = with_token(
        &gw,
        json!(["BLMOVE", "{q}src", "{q}dst", "LEFT", "RIGHT", "1"]),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"result": "x"})));
    let after = restdis::backend::replicas::after(Some(token.as_bytes()));
    let named = after.offset_of(key);
    assert!(
        named.is_some_and(|o| o > before),
        "token {token} names the shard at {named:?}, not past {before}"
    );
    gw.shutdown().await;
}
