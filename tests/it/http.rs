//! The HTTP surface: methods, paths, Content-Type, size limits, sync tokens, CORS, the
//! unauthenticated welcome and the admin endpoints.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{cli_for, status_json, Gateway, TestRedis, TOKEN};

#[tokio::test]
async fn methods_paths_and_content_type() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    // Content-Type is ignored (curl -d sends form-encoded).
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"["SET","ct","1"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (200, json!({"result": "OK"})));
    // Repeated leading slashes and a trailing slash.
    for path in ["//pipeline", "/pipeline/", "//multi-exec"] {
        let resp = gw.post_raw(path, r#"[["GET","ct"]]"#).await;
        assert_eq!(status_json(resp).await, (200, json!([{"result": "1"}])), "{path}");
    }
    // Other methods: 405 with a JSON body.
    for method in ["DELETE", "PATCH"] {
        let resp = gw
            .http
            .request(method.parse().unwrap(), format!("{}/get/ct", gw.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 405);
        assert!(body["error"].is_string());
    }
    // GET / without a token: a welcome (SRH parity); with one: an empty command.
    let resp = gw.http.get(format!("{}/", gw.url)).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("restdis"));
    let resp = gw
        .http
        .get(format!("{}/", gw.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.0, 400);
    let resp = gw.http.post(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(status_json(resp).await.0, 401);
}

#[tokio::test]
async fn oversized_bodies_get_a_json_413_not_a_reset() {
    let redis = TestRedis::start();
    let mut cli = cli_for(&redis);
    cli.max_request_size = Some("1KiB".into());
    let gw = Gateway::start_with(cli).await;
    let big = format!(r#"["SET","k","{}"]"#, "x".repeat(200_000));
    let resp = gw.post_raw("/", big).await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 413);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("ERR max request size exceeded. Limit: 1024 bytes"),
        "{body}"
    );
    // Chunked (no Content-Length) too.
    let chunks = futures_stream(vec![vec![b'x'; 800], vec![b'y'; 800]]);
    let resp = gw
        .http
        .post(format!("{}/set/k", gw.url))
        .bearer_auth(TOKEN)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.0, 413);
    // Under the limit still works.
    assert_eq!(gw.cmd(json!(["SET", "k", "small"])).await.0, 200);
}

fn futures_stream(parts: Vec<Vec<u8>>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    struct S(std::vec::IntoIter<Vec<u8>>);
    impl futures_core::Stream for S {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    S(parts.into_iter())
}

#[tokio::test]
async fn every_response_has_a_fresh_sync_token() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let mut seen = HashSet::new();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = gw.http.clone();
        let url = gw.url.clone();
        tasks.push(tokio::spawn(async move {
            let req = if i % 5 == 0 {
                http.post(format!("{url}/"))
                    .bearer_auth("wrong")
                    .body("[\"PING\"]")
            } else {
                http.post(format!("{url}/"))
                    .bearer_auth(TOKEN)
                    .body(format!(r#"["SET","k{i}","v"]"#))
            };
            let resp = req.send().await.unwrap();
            resp.headers()["upstash-sync-token"].to_str().unwrap().to_string()
        }));
    }
    for t in tasks {
        let token = t.await.unwrap();
        assert!(!token.is_empty());
        assert!(seen.insert(token), "sync token repeated");
    }
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let resp = gw
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/", gw.url))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, upstash-encoding",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, upstash-encoding"
    );
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(TOKEN)
        .header("Origin", "https://app.example")
        .body(r#"["PING"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        resp.headers()["access-control-expose-headers"],
        "upstash-sync-token"
    );
    // Server-side clients send no Origin and get no CORS headers.
    let resp = gw.post_raw("/", r#"["PING"]"#).await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // Restricted origins echo only listed ones.
    let mut cli = cli_for(&redis);
    cli.cors_origins = Some("https://a.example".into());
    let gw2 = Gateway::start_with(cli).await;
    let allowed = gw2
        .http
        .post(format!("{}/", gw2.url))
        .bearer_auth(TOKEN)
        .header("Origin", "https://a.example")
        .body("[\"PING\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://a.example"
    );
    let other = gw2
        .http
        .post(format!("{}/", gw2.url))
        .bearer_auth(TOKEN)
        .header("Origin", "https://b.example")
        .body("[\"PING\"]")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn admin_endpoints() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(json!(["PING"])).await;
    let get = |p: &str| gw.http.get(format!("{}{p}", gw.admin)).send();
    assert_eq!(
        status_json(get("/healthz").await.unwrap()).await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        status_json(get("/readyz").await.unwrap()).await,
        (200, json!({"status": "ready"}))
    );
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("restdis_http_requests_total{route=\"single\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
    let (status, body): (u16, Value) = status_json(get("/nope").await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn slow_and_oversized_bodies_are_answered_not_held() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[limits]\nbody_read_timeout = \"300ms\"\n").unwrap();
    let mut cli = cli_for(&redis);
    cli.config = Some(file);
    cli.max_request_size = Some("1MiB".into());
    let gw = Gateway::start_with(cli).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let exchange = |request: String| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let started = std::time::Instant::now();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
        }
    };
    // Declares a huge body, sends one byte: a 413 at once, not a wait for the rest.
    let (resp, took) = exchange(format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 999999999999\r\n\r\n["
    ))
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("max request size exceeded"), "{resp}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Half a body, then silence: a JSON 408 after the body timeout.
    let (resp, took) = exchange(format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 20\r\n\r\n[\"PING\""
    ))
    .await;
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("{\"error\":"), "{resp}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // 405 names the allowed methods.
    let resp = gw.http.delete(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
}

/// `restdis healthcheck` (the container image's HEALTHCHECK): exit 0 on a ready admin
/// listener, 1 with the reason when nothing answers or Redis is down.
#[tokio::test]
async fn the_healthcheck_subcommand_asks_readyz() {
    let mut redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let admin = gw.admin.trim_start_matches("http://").to_string();
    let run = |addr: String| async move {
        tokio::process::Command::new(crate::harness::binary())
            .args(["healthcheck", "--addr", &addr])
            .output()
            .await
            .unwrap()
    };
    let ok = run(admin.clone()).await;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let port = crate::harness::free_port();
    let dead = run(format!("127.0.0.1:{port}")).await;
    assert_eq!(dead.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dead.stderr).contains("cannot connect"));
    redis.kill();
    let down = run(admin).await;
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("503"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
