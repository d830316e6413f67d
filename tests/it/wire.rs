//! The pipelined connection to Redis (`backend::wire`): every kind of address, the handshake a
//! URL asks for (password, ACL user, database), and replies that stress the reply scanner
//! (deep nesting, large replies arriving over many reads, many requests sharing one write).

use std::time::{Duration, Instant};

use restdis::cli::Cli;
use restdis::config::Config;
use restdis::server::Server;
use serde_json::json;

use crate::harness::{cli_for, Gateway, TestRedis, TOKEN};

/// A Unix-socket URL works like TCP.
#[tokio::test]
async fn unix_socket_url() {
    let redis = TestRedis::start();
    let gw = Gateway::start_with(Cli {
        redis_url: Some(redis.unix_url()),
        ..cli_for(&redis)
    })
    .await;
    assert_eq!(gw.cmd(json!(["SET", "over-unix", "yes"])).await.0, 200);
    assert_eq!(
        redis.query(&["GET", "over-unix"]),
        redis::Value::BulkString(b"yes".to_vec())
    );
}

/// `redis://user:password@host:port/db`: the connection authenticates as the ACL user and
/// selects the database before any request uses it.
#[tokio::test]
async fn acl_user_password_and_database_from_the_url() {
    let redis = TestRedis::start();
    redis.query(&["ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "+@all"]);
    let gw = Gateway::start_with(Cli {
        redis_url: Some(format!("redis://alice:s3cret@127.0.0.1:{}/3", redis.port)),
        ..cli_for(&redis)
    })
    .await;
    assert_eq!(gw.cmd(json!(["SET", "in-db-3", "v"])).await.0, 200);
    assert_eq!(
        gw.cmd(json!(["ACL", "WHOAMI"])).await.1,
        json!({"result": "alice"})
    );
    let direct = redis::Client::open(format!("{}/3", redis.url())).unwrap();
    let mut direct = direct.get_connection().unwrap();
    let v: Option<String> = redis::cmd("GET").arg("in-db-3").query(&mut direct).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    assert_eq!(redis.query(&["EXISTS", "in-db-3"]), redis::Value::Int(0));
}

/// A wrong password: requests get a JSON 503 at once (never a hang), and the cause is the
/// one Redis gave.
#[tokio::test]
async fn wrong_password_gives_503_at_once() {
    let redis = TestRedis::start();
    redis.query(&["CONFIG", "SET", "requirepass", "right"]);
    let cli = Cli {
        redis_url: Some(format!("redis://:wrong@127.0.0.1:{}", redis.port)),
        ..cli_for(&redis)
    };
    let server = Server::start(Config::resolve(&cli, &Default::default()).unwrap())
        .await
        .unwrap();
    let url = format!("http://{}", server.api_addr);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let started = Instant::now();
        let resp = http
            .post(&url)
            .bearer_auth(TOKEN)
            .body(r#"["PING"]"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert!(!server.state.tenancy().backends[0].is_connected());
    server.shutdown().await;
}

/// Replies the scanner has to work for: a Lua reply nested 7,500 deep (Redis itself refuses
/// about 8,000: "reached lua stack limit"), and 200,000 list elements (several MB, many socket
/// reads), while small requests share the connection. Replies are parsed and encoded
/// recursively: a release build serves this depth on a 2 MiB stack (restdis's threads have
/// 8 MiB), but a debug build's frames are several times larger, hence the big test stack.
#[test]
fn deep_and_large_replies_do_not_disturb_other_requests() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .unwrap()
        .block_on(deep_and_large_replies());
}

async fn deep_and_large_replies() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let script = "local t = {7} for i = 1, tonumber(ARGV[1]) do t = {t} end return t";
    let resp = gw
        .post_raw("/", json!(["EVAL", script, "0", "7500"]).to_string())
        .await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let expected = format!("{{\"result\":{}7{}}}", "[".repeat(7501), "]".repeat(7501));
    assert_eq!(body, expected);

    for chunk in 0..20 {
        let items: Vec<String> = (0..10_000).map(|i| format!("item-{chunk}-{i:05}")).collect();
        let mut cmd = vec![json!("RPUSH"), json!("big")];
        cmd.extend(items.into_iter().map(serde_json::Value::from));
        assert_eq!(gw.cmd(serde_json::Value::Array(cmd)).await.0, 200);
    }
    let small = (0..200).map(|i| {
        let gw = &gw;
        async move { gw.cmd(json!(["INCR", format!("n{}", i % 10)])).await }
    });
    let (big, small) = tokio::join!(
        gw.cmd(json!(["LRANGE", "big", "0", "-1"])),
        futures_util::future::join_all(small)
    );
    assert_eq!(big.0, 200);
    let items = big.1["result"].as_array().unwrap();
    assert_eq!(items.len(), 200_000);
    assert_eq!(items[0], "item-0-00000");
    assert_eq!(items[199_999], "item-19-09999");
    assert!(small.iter().all(|(status, _)| *status == 200));
    let mut total = 0;
    for i in 0..10 {
        total += gw.cmd(json!(["GET", format!("n{i}")])).await.1["result"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
    }
    assert_eq!(total, 200);
}
