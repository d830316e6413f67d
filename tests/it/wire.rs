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
    assert_eq!(counted(&gw, 10).await, 200);
}

/// The sum of the counters `n0` .. `n{keys - 1}`.
async fn counted(gw: &Gateway, keys: usize) -> i64 {
    let mut total = 0;
    for i in 0..keys {
        total += gw.cmd(json!(["GET", format!("n{i}")])).await.1["result"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
    }
    total
}

/// Large values (read straight into their own buffer; 3 MiB scanned on a blocking thread; sent
/// as they are or base64-encoded piece by piece) come back byte for byte as the small-value
/// path writes them, and once a command's reply was large, the next one goes to spill-over
/// connections while small requests go on.
#[tokio::test]
async fn large_values_come_back_whole_and_move_to_spill_over_connections() {
    use base64::Engine as _;
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let ascii: Vec<u8> = (0..(3 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let mut quoted = ascii[..300_000].to_vec();
    quoted[1000] = b'"';
    quoted[2000] = b'\\';
    let binary: Vec<u8> = (0..600_001u32).map(|i| (i % 256) as u8).collect();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut direct = client.get_connection().unwrap();
    for (key, value) in [
        ("big-ascii", &ascii),
        ("big-quoted", &quoted),
        ("big-bin", &binary),
    ] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(&value[..])
            .query(&mut direct)
            .unwrap();
    }
    let clients = || {
        match redis.query(&["INFO", "clients"]) {
            redis::Value::VerbatimString { text, .. } => text,
            redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        }
        .lines()
        .find_map(|l| {
            l.strip_prefix("connected_clients:")
                .map(|n| n.trim().parse::<i64>().unwrap())
        })
        .unwrap()
    };
    assert_eq!(gw.cmd(json!(["PING"])).await.0, 200);
    let before = clients();

    for round in 0..2 {
        for (key, value) in [
            ("big-ascii", &ascii),
            ("big-quoted", &quoted),
            ("big-bin", &binary),
        ] {
            let plain = gw.post_raw("/", json!(["GET", key]).to_string()).await;
            assert_eq!(plain.status(), 200);
            let want = serde_json::to_string(&json!({"result": String::from_utf8_lossy(value)}));
            assert_eq!(plain.text().await.unwrap(), want.unwrap(), "{key}, round {round}");
            let b64 = gw
                .http
                .post(&gw.url)
                .bearer_auth(TOKEN)
                .header("Upstash-Encoding", "base64")
                .body(json!(["GET", key]).to_string())
                .send()
                .await
                .unwrap();
            let want = format!(
                "{{\"result\":\"{}\"}}",
                base64::engine::general_purpose::STANDARD.encode(value)
            );
            assert_eq!(b64.text().await.unwrap(), want, "{key} base64, round {round}");
        }
    }

    // Small requests beside large ones, all answered, all counted.
    let big = (0..6).map(|_| gw.cmd(json!(["GET", "big-ascii"])));
    let small = (0..100).map(|i| gw.cmd(json!(["INCR", format!("n{}", i % 5)])));
    let (big, small) = tokio::join!(
        futures_util::future::join_all(big),
        futures_util::future::join_all(small)
    );
    assert!(big
        .iter()
        .all(|(status, body)| *status == 200 && body["result"].as_str().map(str::len) == Some(3 << 20)));
    assert!(small.iter().all(|(status, _)| *status == 200));
    assert_eq!(counted(&gw, 5).await, 100);

    // The two spill-over connections were opened (in the background; bounded wait).
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients() < before + 2 {
        assert!(
            Instant::now() < deadline,
            "no spill-over connections: {} clients, {before} before",
            clients()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
