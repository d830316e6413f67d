//! Commands that must never reach a shared connection, blocking commands, the deny-list and
//! the `SCAN ... WITHTYPE` emulation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Gateway, TestRedis};

#[tokio::test]
async fn stateful_commands_are_refused_by_name_and_later_requests_work() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["SET", "k", "v"])).await;
    for cmd in [
        json!(["MULTI"]),
        json!(["EXEC"]),
        json!(["DISCARD"]),
        json!(["WATCH", "k"]),
        json!(["UNWATCH"]),
        json!(["SUBSCRIBE", "c"]),
        json!(["PSUBSCRIBE", "c*"]),
        json!(["MONITOR"]),
        json!(["HELLO", "3"]),
        json!(["AUTH", "x"]),
        json!(["RESET"]),
        json!(["QUIT"]),
        json!(["CLIENT", "REPLY", "OFF"]),
        json!(["CLIENT", "PAUSE", "1000"]),
        json!(["CLIENT", "KILL", "TYPE", "normal"]),
        json!(["SELECT", "1"]),
        json!(["WAIT", "1", "1000"]),
    ] {
        let (status, body) = gw.cmd(cmd.clone()).await;
        assert_eq!(status, 400, "{cmd}");
        let name = cmd[0].as_str().unwrap();
        assert!(body["error"].as_str().unwrap().contains(name), "{cmd} -> {body}");
        // The connection is untouched: the next command behaves normally.
        assert_eq!(
            gw.cmd(json!(["GET", "k"])).await,
            (200, json!({"result": "v"})),
            "after {cmd}"
        );
    }
    assert_eq!(
        gw.cmd(json!(["SELECT", "0"])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        gw.cmd(json!(["CLIENT", "SETNAME", "app"])).await,
        (200, json!({"result": "OK"}))
    );
}

#[tokio::test]
async fn deny_list_defaults() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for cmd in [
        json!(["CONFIG", "SET", "maxmemory", "1"]),
        json!(["SHUTDOWN"]),
        json!(["DEBUG", "SLEEP", "0"]),
    ] {
        let (status, body) = gw.cmd(cmd.clone()).await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("denied"), "{body}");
    }
    assert_eq!(gw.cmd(json!(["FLUSHDB"])).await.0, 200);
    assert_eq!(gw.cmd(json!(["SCRIPT", "FLUSH"])).await.0, 200);
    assert_eq!(gw.cmd(json!(["CONFIG", "GET", "maxmemory"])).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_never_block_anyone() {
    let redis = TestRedis::start();
    let gw = Arc::new(Gateway::start(&redis).await);
    gw.cmd(json!(["SET", "k", "v"])).await;
    let started = Instant::now();
    let blockers: Vec<_> = [
        json!(["BLPOP", "empty", 5]),
        json!(["BRPOP", "empty", 5]),
        json!(["BLMOVE", "empty", "dst", "LEFT", "RIGHT", 5]),
        json!(["BZPOPMIN", "zempty", 5]),
        json!(["XREAD", "BLOCK", 5000, "STREAMS", "s", "$"]),
    ]
    .into_iter()
    .map(|cmd| {
        let gw = gw.clone();
        tokio::spawn(async move { gw.cmd(cmd).await })
    })
    .collect();
    for _ in 0..20 {
        assert_eq!(gw.cmd(json!(["GET", "k"])).await, (200, json!({"result": "v"})));
    }
    for b in blockers {
        let (status, body) = b.await.unwrap();
        assert_eq!((status, body), (200, json!({"result": null})));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a blocking command waited: {:?}",
        started.elapsed()
    );
    // A pop with data returns it.
    gw.cmd(json!(["RPUSH", "q", "a"])).await;
    assert_eq!(
        gw.cmd(json!(["BLPOP", "q", 0])).await.1,
        json!({"result": ["q", "a"]})
    );
}

#[tokio::test]
async fn scan_withtype_is_emulated() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["SET", "s", "1"])).await;
    gw.cmd(json!(["HSET", "h", "f", "1"])).await;
    gw.cmd(json!(["RPUSH", "l", "1"])).await;
    let (status, body) = gw.cmd(json!(["SCAN", "0", "COUNT", 100, "WITHTYPE"])).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"][0], json!("0"));
    let flat = body["result"][1].as_array().unwrap();
    let mut pairs: Vec<(String, String)> = flat
        .chunks(2)
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    let expected =
        [("h", "hash"), ("l", "list"), ("s", "string")].map(|(k, t)| (k.to_string(), t.to_string()));
    assert_eq!(pairs, expected);
    // Also inside a pipeline, and SCAN without it is untouched.
    let (_, body) = gw
        .pipeline(json!([
            ["SCAN", "0", "MATCH", "s", "WITHTYPE"],
            ["SCAN", "0", "MATCH", "s"]
        ]))
        .await;
    assert_eq!(body[0], json!({"result": ["0", ["s", "string"]]}));
    assert_eq!(body[1], json!({"result": ["0", ["s"]]}));
}

#[tokio::test]
async fn scan_option_values_named_withtype_are_not_the_flag() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["SET", "withtype", "1"])).await;
    let (status, body) = gw.cmd(json!(["SCAN", "0", "MATCH", "withtype"])).await;
    assert_eq!((status, body), (200, json!({"result": ["0", ["withtype"]]})));
}

#[tokio::test]
async fn tenants_sharing_a_redis_cannot_reach_each_other() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let cli = crate::harness::cli_for_toml(
        &dir,
        &format!(
            "[tenants.a]\ntokens = [\"tok-a\"]\nredis_url = \"{url}\"\ndb = 1\n\n\
             [tenants.b]\ntokens = [\"tok-b\"]\nredis_url = \"{url}\"\ndb = 2\n"
        ),
    );
    let gw = Gateway::start_with(cli).await;
    assert_eq!(gw.post_as("tok-a", "/", json!(["SET", "k", "a"])).await.0, 200);
    assert_eq!(gw.post_as("tok-b", "/", json!(["SET", "k", "b"])).await.0, 200);
    assert_eq!(
        gw.post_as("tok-a", "/", json!(["GET", "k"])).await.1,
        json!({"result": "a"})
    );
    assert_eq!(
        gw.post_as("tok-b", "/", json!(["GET", "k"])).await.1,
        json!({"result": "b"})
    );
    for cmd in [
        json!(["SELECT", "2"]),
        json!(["MOVE", "k", "2"]),
        json!(["SWAPDB", "1", "2"]),
        json!(["COPY", "k", "k2", "DB", "2"]),
        json!(["FLUSHALL"]),
        json!(["FUNCTION", "FLUSH"]),
    ] {
        let (status, body) = gw.post_as("tok-a", "/", cmd.clone()).await;
        assert_eq!(status, 400, "{cmd} -> {body}");
    }
    // Inside batches too.
    let (_, body) = gw
        .post_as("tok-a", "/pipeline", json!([["FLUSHALL"], ["GET", "k"]]))
        .await;
    assert!(body[0]["error"].is_string());
    assert_eq!(
        gw.post_as("tok-a", "/multi-exec", json!([["SWAPDB", "1", "2"]]))
            .await
            .0,
        400
    );
    // Their own database is theirs to flush; SELECT 0 means "mine".
    assert_eq!(
        gw.post_as("tok-a", "/", json!(["SELECT", "0"])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(gw.post_as("tok-a", "/", json!(["FLUSHDB"])).await.0, 200);
    assert_eq!(
        gw.post_as("tok-b", "/", json!(["GET", "k"])).await.1,
        json!({"result": "b"})
    );
}

/// `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, which only Upstash
/// knows; restdis removes the flag and maps the original SHA1 for EVALSHA.
#[tokio::test]
async fn upstash_script_flags_are_adapted() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let script = "#!lua flags=allow-key-locking\nreturn redis.call('INCR', KEYS[1])";
    let original_sha = restdis::protocol::scripts::sha1_hex(script.as_bytes());
    let (status, body) = gw.cmd(json!(["EVALSHA", original_sha, 1, "n"])).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("NOSCRIPT"), "{body}");
    assert_eq!(
        gw.cmd(json!(["EVAL", script, 1, "n"])).await,
        (200, json!({"result": 1}))
    );
    // Now the client's own SHA1 works, in every route.
    assert_eq!(
        gw.cmd(json!(["EVALSHA", original_sha, 1, "n"])).await,
        (200, json!({"result": 2}))
    );
    let (_, body) = gw.pipeline(json!([["EVALSHA", original_sha, 1, "n"]])).await;
    assert_eq!(body, json!([{"result": 3}]));
    let (_, body) = gw.multi(json!([["EVALSHA", original_sha, 1, "n"]])).await;
    assert_eq!(body, json!([{"result": 4}]));
    // Flags Redis knows stay.
    let ro = "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('GET', KEYS[1])";
    assert_eq!(
        gw.cmd(json!(["EVAL_RO", ro, 1, "n"])).await,
        (200, json!({"result": "4"}))
    );
    let (_, body) = gw
        .cmd(json!([
            "EVAL",
            "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET','x','1')",
            0
        ]))
        .await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Write commands are not allowed"),
        "{body}"
    );
}
