//! Single commands in both forms, and how arguments become Redis bytes.

use serde_json::json;

use crate::harness::{Gateway, TestRedis, TOKEN};

#[tokio::test]
async fn json_body_set_get_and_verbatim_errors() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    assert_eq!(
        gw.cmd(json!(["SET", "foo", "bar", "EX", 100])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        gw.cmd(json!(["get", "foo"])).await,
        (200, json!({"result": "bar"}))
    );
    assert_eq!(
        gw.cmd(json!(["GET", "missing"])).await,
        (200, json!({"result": null}))
    );
    assert_eq!(
        gw.cmd(json!(["TTL", "foo"])).await.1["result"]
            .as_i64()
            .map(|t| t > 90),
        Some(true)
    );
    let (status, body) = gw.cmd(json!(["INCR", "foo"])).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "ERR value is not an integer or out of range"})
        )
    );
    let (status, body) = gw.cmd(json!(["NOSUCHCMD", "x"])).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("ERR unknown command 'NOSUCHCMD'"),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only an error key: {body}");
    let (_, body) = gw
        .cmd(json!(["EVALSHA", "0000000000000000000000000000000000000000", 0]))
        .await;
    assert_eq!(
        body,
        json!({"error": "NOSCRIPT No matching script. Please use EVAL."})
    );
}

#[tokio::test]
async fn numbers_booleans_unicode_and_binary_arguments() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for (value, stored) in [
        (json!(1.0), "1.0"),
        (json!(8), "8"),
        (json!(-0.5), "-0.5"),
        (json!(true), "true"),
        (json!("héllo 🙂"), "héllo 🙂"),
        (json!("a\u{0000}b"), "a\u{0000}b"),
    ] {
        gw.cmd(json!(["SET", "k", value])).await;
        let got = redis.query(&["GET", "k"]);
        let got = match got {
            redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, stored);
    }
    // The exact lexeme of a huge integer, sent as raw text.
    let resp = gw
        .post_raw("/", r#"["SET","big",123456789012345678901234567890]"#)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        redis.query(&["GET", "big"]),
        redis::Value::BulkString(b"123456789012345678901234567890".to_vec())
    );
    let resp = gw.post_raw("/", r#"["SET","f",1.50e+3]"#).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        redis.query(&["GET", "f"]),
        redis::Value::BulkString(b"1.50e+3".to_vec())
    );
}

#[tokio::test]
async fn refused_arguments_are_json_400s() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for body in [
        r#"["SET","k",null]"#,
        r#"["SET","k",[1]]"#,
        r#"["SET","k",{"a":1}]"#,
        "[]",
        "{}",
        "nope",
        "[\"GET\"",
    ] {
        let resp = gw.post_raw("/", body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert!(v["error"].is_string(), "{body} -> {v}");
    }
    assert_eq!(gw.cmd(json!(["PING"])).await, (200, json!({"result": "PONG"})));
}

#[tokio::test]
async fn path_form_segments_body_and_query() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    assert_eq!(gw.get_path("/set/foo/bar").await, (200, json!({"result": "OK"})));
    assert_eq!(gw.get_path("/get/foo").await, (200, json!({"result": "bar"})));
    // %2F stays inside its segment; + is a literal plus.
    assert_eq!(gw.get_path("/set/a%2Fb/1+1").await.0, 200);
    assert_eq!(gw.get_path("/get/a%2Fb").await.1, json!({"result": "1+1"}));
    // A raw body is one final argument, then query pairs.
    let resp = gw
        .http
        .post(format!("{}/set/doc?EX=100", gw.url))
        .bearer_auth(TOKEN)
        .body(r#"["not", "spread"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        gw.get_path("/get/doc").await.1,
        json!({"result": r#"["not", "spread"]"#})
    );
    let ttl = gw.get_path("/ttl/doc").await.1["result"].as_i64().unwrap();
    assert!((90..=100).contains(&ttl), "{ttl}");
    // PUT works like POST. One trailing slash is ignored, so `/set/empty//` sets "".
    let resp = gw
        .http
        .put(format!("{}/set/empty//", gw.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(redis.query(&["STRLEN", "empty"]), redis::Value::Int(0));
    // Binary bytes by percent-encoding.
    assert_eq!(gw.get_path("/set/bin/%FF%00%01").await.0, 200);
    assert_eq!(
        redis.query(&["GET", "bin"]),
        redis::Value::BulkString(vec![0xFF, 0, 1])
    );
    // Unknown commands are Redis errors, not 404s.
    let (status, body) = gw.get_path("/nosuch/x").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("unknown command"));
    // ZADD with several score/member pairs.
    assert_eq!(
        gw.get_path("/zadd/teams/100/team-x/90/team-y").await.1,
        json!({"result": 2})
    );
}

#[tokio::test]
async fn head_runs_the_command_and_sends_no_body() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let resp = gw
        .http
        .head(format!("{}/set/h/1?_token={TOKEN}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("upstash-sync-token"));
    assert_eq!(resp.bytes().await.unwrap().len(), 0);
    assert_eq!(
        redis.query(&["GET", "h"]),
        redis::Value::BulkString(b"1".to_vec())
    );
}
