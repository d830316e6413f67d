//! Tokens: header and `_token`, 401s as JSON, and read-only tokens through every route.

use serde_json::json;

use crate::harness::{status_json, Gateway, TestRedis, RO_TOKEN, TOKEN};

#[tokio::test]
async fn missing_or_wrong_tokens_get_json_401s() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let url = format!("{}/", gw.url);
    let unauthorized = json!({"error": "WRONGPASS invalid or missing auth token"});
    let resp = gw.http.post(&url).body(r#"["PING"]"#).send().await.unwrap();
    assert_eq!(status_json(resp).await, (401, unauthorized.clone()));
    let resp = gw
        .http
        .post(&url)
        .bearer_auth("wrong")
        .body(r#"["PING"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (401, unauthorized.clone()));
    let resp = gw
        .http
        .post(&url)
        .bearer_auth(&TOKEN[..TOKEN.len() - 1])
        .body(r#"["PING"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = gw
        .http
        .post(&url)
        .header("Authorization", format!("Basic {TOKEN}"))
        .body("[\"PING\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = gw
        .http
        .get(format!("{}/get/k?_token=nope", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (401, unauthorized));
    // Scheme in any case, and _token on any route.
    let resp = gw
        .http
        .post(&url)
        .header("authorization", format!("bearer {TOKEN}"))
        .body(r#"["PING"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = gw
        .http
        .post(format!("{}/pipeline?_token={TOKEN}", gw.url))
        .body(r#"[["PING"]]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn read_only_token_reads_but_never_writes() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["SET", "k", "v"])).await;
    assert_eq!(
        gw.post_as(RO_TOKEN, "/", json!(["GET", "k"])).await,
        (200, json!({"result": "v"}))
    );
    assert_eq!(gw.post_as(RO_TOKEN, "/", json!(["PING"])).await.0, 200);
    assert_eq!(gw.post_as(RO_TOKEN, "/", json!(["HGETALL", "h"])).await.0, 200);
    let noperm = |body: &serde_json::Value| body["error"].as_str().is_some_and(|e| e.starts_with("NOPERM"));
    for cmd in [
        json!(["SET", "k", "w"]),
        json!(["DEL", "k"]),
        json!(["EVAL", "return redis.call('SET','k','w')", 0]),
        json!(["EVALSHA", "0000000000000000000000000000000000000000", 0]),
        json!(["FLUSHALL"]),
        json!(["KEYS", "*"]),
        json!(["SCAN", "0"]),
        json!(["PUBLISH", "c", "m"]),
        json!(["CONFIG", "GET", "maxmemory"]),
    ] {
        let (status, body) = gw.post_as(RO_TOKEN, "/", cmd.clone()).await;
        assert_eq!(status, 400, "{cmd}");
        assert!(noperm(&body), "{cmd} -> {body}");
    }
    // A read-only script is fine.
    assert_eq!(
        gw.post_as(
            RO_TOKEN,
            "/",
            json!(["EVAL_RO", "return redis.call('GET','k')", 1, "k"])
        )
        .await
        .1,
        json!({"result": "v"})
    );
    // Path form.
    let resp = gw
        .http
        .get(format!("{}/set/k/w?_token={RO_TOKEN}", gw.url))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 400);
    assert!(noperm(&body));
    // Pipeline: per entry.
    let (status, body) = gw
        .post_as(RO_TOKEN, "/pipeline", json!([["GET", "k"], ["SET", "k", "w"]]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0], json!({"result": "v"}));
    assert!(noperm(&body[1]));
    // Transaction: the whole of it.
    let (status, body) = gw
        .post_as(RO_TOKEN, "/multi-exec", json!([["GET", "k"], ["SET", "k", "w"]]))
        .await;
    assert_eq!(status, 400);
    assert!(noperm(&body));
    assert_eq!(
        redis.query(&["GET", "k"]),
        redis::Value::BulkString(b"v".to_vec())
    );
}
