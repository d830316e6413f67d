//! `Upstash-Encoding: base64` and `Upstash-Response-Format: resp2`, as the clients decode them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{status_json, Gateway, TestRedis, TOKEN};

async fn b64(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let resp = gw
        .http
        .post(format!("{}{path}", gw.url))
        .bearer_auth(TOKEN)
        .header("Upstash-Encoding", "base64")
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

fn enc(s: &[u8]) -> Value {
    Value::String(STANDARD.encode(s))
}

#[tokio::test]
async fn every_string_is_base64_but_the_top_level_ok() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    assert_eq!(
        b64(&gw, "/", json!(["SET", "k", "bar"])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        b64(&gw, "/", json!(["GET", "k"])).await,
        (200, json!({"result": "YmFy"}))
    );
    assert_eq!(
        b64(&gw, "/", json!(["PING"])).await.1,
        json!({"result": enc(b"PONG")})
    );
    assert_eq!(
        b64(&gw, "/", json!(["TYPE", "k"])).await.1,
        json!({"result": enc(b"string")})
    );
    assert_eq!(b64(&gw, "/", json!(["INCR", "n"])).await.1, json!({"result": 1}));
    assert_eq!(
        b64(&gw, "/", json!(["GET", "none"])).await.1,
        json!({"result": null})
    );
    // A status OK nested in an array must be encoded (a raw "OK" decodes to "8" in TS).
    let script = "return {redis.status_reply('OK'), 'x', 3}";
    assert_eq!(
        b64(&gw, "/", json!(["EVAL", script, 0])).await.1,
        json!({"result": [enc(b"OK"), enc(b"x"), 3]})
    );
    // Errors are never encoded.
    assert_eq!(
        b64(&gw, "/", json!(["INCR", "k"])).await,
        (
            400,
            json!({"error": "ERR value is not an integer or out of range"})
        )
    );
    // Pipeline entries follow the same rule, each independently.
    let (status, body) = b64(
        &gw,
        "/pipeline",
        json!([["SET", "a", "1"], ["GET", "a"], ["INCR", "k"]]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"result": "OK"}, {"result": enc(b"1")}, {"error": "ERR value is not an integer or out of range"}])
    );
}

#[tokio::test]
async fn binary_values_round_trip_only_with_base64() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let bytes: Vec<u8> = (0u8..=255).collect();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("bin").arg(&bytes).query(&mut conn).unwrap();
    let (_, body) = b64(&gw, "/", json!(["GET", "bin"])).await;
    let decoded = STANDARD.decode(body["result"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, bytes);
    // Without base64 invalid UTF-8 becomes U+FFFD (documented as lossy).
    let (_, body) = gw.cmd(json!(["GET", "bin"])).await;
    assert!(body["result"].as_str().unwrap().contains('\u{FFFD}'));
    // Emoji and numeric-looking strings stay exactly as stored.
    for v in ["🙂 emoji", "8", "1.0", "12345678901234567890", ""] {
        gw.cmd(json!(["SET", "s", v])).await;
        assert_eq!(gw.cmd(json!(["GET", "s"])).await.1, json!({"result": v}));
        assert_eq!(
            b64(&gw, "/", json!(["GET", "s"])).await.1,
            json!({"result": enc(v.as_bytes())})
        );
    }
}

#[tokio::test]
async fn resp2_format() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["SET", "k", "bar"])).await;
    let send = |body: &'static str, fmt: &'static str| {
        gw.http
            .post(format!("{}/", gw.url))
            .bearer_auth(TOKEN)
            .header("Upstash-Response-Format", fmt)
            .body(body)
            .send()
    };
    let resp = send(r#"["GET","k"]"#, "resp2").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"$3\r\nbar\r\n");
    let resp = send(r#"["INCR","k"]"#, "resp2").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        b"-ERR value is not an integer or out of range\r\n"
    );
    let resp = send(r#"["GET","k"]"#, "xml").await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(TOKEN)
        .header("Upstash-Response-Format", "resp2")
        .header("Upstash-Encoding", "base64")
        .body(r#"["GET","k"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
