//! `/pipeline` and `/multi-exec`: order, exact key shapes, per-entry errors, atomicity, and
//! no cross-talk between concurrent transactions and single commands.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::{Gateway, TestRedis};

#[tokio::test]
async fn pipeline_replies_in_order_with_exact_shapes() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let (status, body) = gw
        .pipeline(json!([
            ["SET", "k1", "v"],
            ["SETEX", "k2", 13, "v"],
            ["INCR", "k1"],
            ["ZADD", "s", 11, "a", 22, "b"]
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"result": "OK"}, {"result": "OK"}, {"error": "ERR value is not an integer or out of range"}, {"result": 2}])
    );
    let entries = body.as_array().unwrap();
    assert!(entries[0].get("error").is_none(), "a success has no error key");
    assert!(entries[2].get("result").is_none(), "an error has no result key");
}

#[tokio::test]
async fn malformed_or_refused_entries_fail_alone() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let resp = gw
        .post_raw(
            "/pipeline",
            r#"[["SET","a","1"],[],"x",["MULTI"],["SELECT","0"],["SET","b",null],["GET","a"]]"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let entries = body.as_array().unwrap();
    assert_eq!(entries.len(), 7);
    assert_eq!(entries[0], json!({"result": "OK"}));
    for i in [1, 2, 3, 5] {
        assert!(entries[i]["error"].is_string(), "entry {i}: {}", entries[i]);
    }
    assert!(entries[3]["error"].as_str().unwrap().contains("MULTI"));
    assert_eq!(entries[4], json!({"result": "OK"}));
    assert_eq!(entries[6], json!({"result": "1"}));
    for bad in ["[]", "{}", "[1,2]x", "\"GET\""] {
        let resp = gw.post_raw("/pipeline", bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].is_string());
    }
}

/// `["SET","k","v"]` sent to `/pipeline` or `/multi-exec` is one command where a batch was
/// expected: Upstash refuses the whole request, and nothing runs.
#[tokio::test]
async fn a_flat_command_as_a_batch_is_refused_whole() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for path in ["/pipeline", "/multi-exec"] {
        let resp = gw.post_raw(path, r#"["SET","flat","v"]"#).await;
        assert_eq!(resp.status(), 400, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("single command"),
            "{path}: {v}"
        );
        assert!(v.get("result").is_none());
    }
    assert_eq!(gw.cmd(json!(["EXISTS", "flat"])).await.1, json!({"result": 0}));
}

#[tokio::test]
async fn large_pipeline_and_blocking_entries() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let cmds: Vec<Value> = (0..1000).map(|i| json!(["INCRBY", "counter", i])).collect();
    let (status, body) = gw.pipeline(Value::Array(cmds)).await;
    assert_eq!(status, 200);
    let last = body.as_array().unwrap().last().unwrap();
    assert_eq!(last, &json!({"result": 499500}));
    // Blocking commands inside a pipeline run without blocking.
    let started = std::time::Instant::now();
    let (_, body) = gw
        .pipeline(json!([
            ["RPUSH", "q", "job"],
            ["BLPOP", "q", 5],
            ["BLPOP", "q", 5],
            ["BRPOP", "q"],
            ["GET", "counter"]
        ]))
        .await;
    assert!(started.elapsed().as_secs_f64() < 2.0, "BLPOP blocked");
    let e = body.as_array().unwrap();
    assert_eq!(e[0], json!({"result": 1}));
    assert_eq!(e[1], json!({"result": ["q", "job"]}));
    assert_eq!(e[2], json!({"result": null}));
    assert!(
        e[3]["error"]
            .as_str()
            .unwrap()
            .contains("wrong number of arguments"),
        "{}",
        e[3]
    );
    assert_eq!(e[4], json!({"result": "499500"}));
}

#[tokio::test]
async fn transaction_runs_atomically_with_errors_in_slots() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let (status, body) = gw
        .multi(json!([
            ["SET", "a", "1"],
            ["INCR", "a"],
            ["HGET", "a", "x"],
            ["GET", "a"]
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"result": "OK"},
            {"result": 2},
            {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
            {"result": "2"}
        ])
    );
    // A queue-time error discards everything: one 400 error, nothing written.
    let (status, body) = gw
        .multi(json!([["SET", "b", "1"], ["NOSUCH"], ["SET", "c", "1"]]))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("unknown command"),
        "{body}"
    );
    assert_eq!(redis.query(&["EXISTS", "b", "c"]), redis::Value::Int(0));
    // Refused commands discard the transaction before anything is sent.
    for cmd in [
        json!(["MULTI"]),
        json!(["WATCH", "a"]),
        json!(["SUBSCRIBE", "c"]),
        json!(["SELECT", "2"]),
    ] {
        let (status, body) = gw.multi(json!([["SET", "d", "1"], cmd])).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(redis.query(&["EXISTS", "d"]), redis::Value::Int(0));
    // Blocking commands inside a transaction never block.
    let (status, body) = gw
        .multi(json!([["BLPOP", "empty", 5], ["SELECT", 0], ["PING"]]))
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!([{"result": null}, {"result": "OK"}, {"result": "PONG"}])
        )
    );
}

/// 200 concurrent transactions mixed with 200 single GETs: every reply belongs to its request
/// (SRH answers GETs with "QUEUED" and mixes values into EXEC results).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_and_singles_never_cross_talk() {
    let redis = TestRedis::start();
    let gw = Arc::new(Gateway::start(&redis).await);
    gw.cmd(json!(["SET", "fixed", "constant"])).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let tx_gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let gw = tx_gw;
            let key = format!("tx:{i}");
            let (status, body) = gw
                .multi(json!([["SET", key, i], ["INCR", key], ["GET", key], ["GET", "fixed"]]))
                .await;
            assert_eq!(status, 200, "{body}");
            let expected = json!([{"result": "OK"}, {"result": i + 1}, {"result": (i + 1).to_string()}, {"result": "constant"}]);
            assert_eq!(body, expected);
        }));
        let get_gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let gw = get_gw;
            assert_eq!(
                gw.cmd(json!(["GET", "fixed"])).await,
                (200, json!({"result": "constant"}))
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
