//! Tenants that share one Redis: a hostile tenant, through every route, gets 0 reads, 0
//! writes and 0 messages of another tenant's, each attempt a clear JSON error; its own
//! scripts, functions, copies and pub/sub keep working; isolation survives a Redis restart;
//! a Redis that cannot enforce it is refused at start unless isolation is turned off.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Gateway, TestRedis};
use crate::streams::Sse;

const A: &str = "tok-a";
const B: &str = "tok-b";

/// Two tenants on databases 1 and 2 of `url`, plus `extra` TOML at the top.
fn two_tenants(dir: &tempfile::TempDir, url: &str, extra: &str) -> restdis::cli::Cli {
    tenants_at(dir, url, url, extra)
}

/// Tenant a on database 1 of `url_a`, b on database 2 of `url_b`.
fn tenants_at(dir: &tempfile::TempDir, url_a: &str, url_b: &str, extra: &str) -> restdis::cli::Cli {
    let file = dir.path().join("tenants.toml");
    std::fs::write(
        &file,
        format!(
            "{extra}\n[tenants.a]\ntokens = [\"{A}\"]\nredis_url = \"{url_a}\"\ndb = 1\n\n\
             [tenants.b]\ntokens = [\"{B}\"]\nredis_url = \"{url_b}\"\ndb = 2\n"
        ),
    )
    .unwrap();
    restdis::cli::Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(file),
        ..Default::default()
    }
}

/// Every attack a tenant on database 1 might try on database 2 (or the server), as commands.
fn attacks() -> Vec<Value> {
    let lua = |body: &str| json!(["EVAL", body, "0"]);
    vec![
        lua("redis.call('SELECT', 2) return redis.call('GET', 'secret')"),
        lua("redis.call('SELECT', 2) redis.call('SET', 'secret', 'pwned') return 1"),
        json!([
            "EVAL_RO",
            "redis.call('SELECT', 2) return redis.call('GET', 'secret')",
            "0"
        ]),
        lua("return redis.call('SWAPDB', 1, 2)"),
        lua("return redis.call('MOVE', 'mine', 2)"),
        lua("return redis.call('COPY', 'mine', 'stolen', 'DB', 2)"),
        lua("return redis.call('FLUSHALL')"),
        lua("return redis.call('CONFIG', 'GET', 'requirepass')"),
        lua("return redis.call('INFO', 'keyspace')"),
        lua("return redis.call('CLIENT', 'LIST')"),
        lua("return redis.call('PUBLISH', 'chat', 'from a script')"),
        lua("return redis.call('PUBLISH', 'b:chat', 'from a script')"),
        json!(["FCALL", "peek", "0"]),
        json!(["FCALL_RO", "peek_ro", "0"]),
        json!(["SELECT", "2"]),
        json!(["SWAPDB", "1", "2"]),
        json!(["MOVE", "mine", "2"]),
        json!(["COPY", "mine", "stolen", "DB", "2"]),
        json!(["FLUSHALL"]),
        json!(["SCRIPT", "FLUSH"]),
        json!(["SCRIPT", "KILL"]),
        json!(["FUNCTION", "FLUSH"]),
        json!(["FUNCTION", "DELETE", "peeklib"]),
        json!([
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=peeklib\nredis.register_function('peek', function() return 'replaced' end)"
        ]),
        json!(["CLIENT", "KILL", "TYPE", "normal"]),
        json!(["CLIENT", "LIST"]),
        json!(["CONFIG", "GET", "*"]),
        json!(["CONFIG", "SET", "maxmemory", "1"]),
        json!(["INFO", "keyspace"]),
        json!(["MONITOR"]),
        json!(["SUBSCRIBE", "chat"]),
        json!(["PSUBSCRIBE", "*"]),
        json!(["ACL", "LIST"]),
        json!(["DEBUG", "SLEEP", "0"]),
        json!(["SLOWLOG", "GET"]),
        json!(["PUBSUB", "NUMPAT"]),
        json!(["MIGRATE", "127.0.0.1", "1", "mine", "2", "1000"]),
    ]
}

/// The reply of one attempt on a route is a clear JSON error (never a result).
fn assert_refused(route: &str, cmd: &Value, status: u16, body: &Value) {
    let error = match route {
        "pipeline" => &body[0]["error"],
        "multi-exec" if status == 200 => &body[0]["error"],
        _ => {
            assert_eq!(status, 400, "{route} {cmd} -> {status} {body}");
            &body["error"]
        }
    };
    assert!(
        error.as_str().is_some_and(|e| !e.is_empty()),
        "{route} {cmd} -> {status} {body}: expected an error"
    );
}

/// `/cmd/arg/...` with every byte that is not alphanumeric percent-encoded.
fn path_form(cmd: &Value) -> String {
    let mut path = String::new();
    for part in cmd.as_array().unwrap() {
        path.push('/');
        for b in part.as_str().unwrap().bytes() {
            if b.is_ascii_alphanumeric() {
                path.push(b as char);
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    path
}

async fn path_as(gw: &Gateway, token: &str, path: &str) -> (u16, Value) {
    let resp = gw
        .http
        .post(format!("{}{path}", gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    crate::harness::status_json(resp).await
}

/// What tenant b and the operator set up before a attacks: b's data, b's script in the
/// script cache, and the operator's function libraries.
async fn seed(redis: &TestRedis, gw: &Gateway) -> String {
    assert_eq!(
        gw.post_as(B, "/", json!(["SET", "secret", "b-data"])).await.0,
        200
    );
    assert_eq!(
        gw.post_as(B, "/", json!(["HSET", "profile", "name", "b"]))
            .await
            .0,
        200
    );
    assert_eq!(gw.post_as(A, "/", json!(["SET", "mine", "a-data"])).await.0, 200);
    let (_, sha) = gw
        .post_as(B, "/", json!(["SCRIPT", "LOAD", "return 'b script'"]))
        .await;
    // The operator's libraries: one that would peek into database 2, one that is harmless.
    redis.query(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=peeklib\n\
         redis.register_function('peek', function() redis.call('SELECT', 2) return redis.call('GET', 'secret') end)\n\
         redis.register_function{function_name='peek_ro', callback=function() redis.call('SELECT', 2) \
         return redis.call('GET', 'secret') end, flags={'no-writes'}}\n\
         redis.register_function('own', function(keys) return redis.call('GET', keys[1]) end)",
    ]);
    sha["result"].as_str().unwrap().to_string()
}

/// b's data, script and the operator's library are as they were.
async fn assert_untouched(redis: &TestRedis, gw: &Gateway, sha: &str) {
    assert_eq!(
        gw.post_as(B, "/", json!(["GET", "secret"])).await.1,
        json!({"result": "b-data"})
    );
    assert_eq!(
        gw.post_as(B, "/", json!(["DBSIZE"])).await.1,
        json!({"result": 2}),
        "nothing was written into b's database"
    );
    assert_eq!(
        gw.post_as(B, "/", json!(["SCRIPT", "EXISTS", sha])).await.1,
        json!({"result": [1]})
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["GET", "mine"])).await.1,
        json!({"result": "a-data"})
    );
    match redis.query(&["FUNCTION", "LIST", "LIBRARYNAME", "peeklib"]) {
        redis::Value::Array(libs) => assert_eq!(libs.len(), 1, "the operator's library is still there"),
        other => panic!("FUNCTION LIST gave {other:?}"),
    }
}

#[tokio::test]
async fn a_hostile_tenant_reaches_nothing_of_another_through_any_route() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(two_tenants(&dir, &redis.url(), "")).await;
    let sha = seed(&redis, &gw).await;

    for cmd in attacks() {
        let (status, body) = gw.post_as(A, "/", cmd.clone()).await;
        assert_refused("POST /", &cmd, status, &body);
        let (status, body) = path_as(&gw, A, &path_form(&cmd)).await;
        assert_refused("path", &cmd, status, &body);
        let (status, body) = gw.post_as(A, "/pipeline", json!([cmd.clone()])).await;
        assert_eq!(status, 200, "pipeline {cmd} -> {body}");
        assert_refused("pipeline", &cmd, status, &body);
        let (status, body) = gw.post_as(A, "/multi-exec", json!([cmd.clone()])).await;
        assert_refused("multi-exec", &cmd, status, &body);
    }
    assert_untouched(&redis, &gw, &sha).await;
    // a's key did not move, and nothing of a's landed in database 2.
    assert_eq!(
        gw.post_as(B, "/", json!(["EXISTS", "mine", "stolen"])).await.1,
        json!({"result": 0})
    );

    // The monitor stream would show b's commands: refused with a JSON error.
    let (status, body) = gw.post_as(A, "/monitor", json!([])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("MONITOR"), "{body}");

    // Pub/sub: a's streams see only a's messages, b's only b's, on the same names.
    let mut a_sub = Sse::open(&gw, "/subscribe/chat", A).await;
    assert_eq!(a_sub.next().await, "subscribe,chat,1");
    let mut a_all = Sse::open(&gw, "/psubscribe/*", A).await;
    assert_eq!(a_all.next().await, "psubscribe,*,1");
    let mut b_sub = Sse::open(&gw, "/subscribe/chat", B).await;
    assert_eq!(b_sub.next().await, "subscribe,chat,1");
    assert_eq!(
        gw.post_as(B, "/", json!(["PUBLISH", "chat", "from b"])).await.1,
        json!({"result": 1}),
        "only b's own subscriber counts"
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["PUBLISH", "chat", "from a"])).await.1,
        json!({"result": 2})
    );
    // b published first: had it reached a, it would come first.
    assert_eq!(a_sub.next().await, "message,chat,from a");
    assert_eq!(a_all.next().await, "pmessage,*,chat,from a");
    assert_eq!(b_sub.next().await, "message,chat,from b");
    // PUBSUB sees only the tenant's own channels, under the names it uses.
    assert_eq!(
        gw.post_as(A, "/", json!(["PUBSUB", "CHANNELS"])).await.1,
        json!({"result": ["chat"]})
    );
    assert_eq!(
        gw.post_as(A, "/pipeline", json!([["PUBSUB", "NUMSUB", "chat", "none"]]))
            .await
            .1,
        json!([{"result": ["chat", 1, "none", 0]}])
    );
    // Redis's own view: the channels are scoped per tenant.
    match redis.query(&["PUBSUB", "CHANNELS"]) {
        redis::Value::Array(mut names) => {
            names.sort_by_key(|v| format!("{v:?}"));
            assert_eq!(
                names,
                vec![
                    redis::Value::BulkString(b"a:chat".to_vec()),
                    redis::Value::BulkString(b"b:chat".to_vec())
                ]
            );
        }
        other => panic!("PUBSUB CHANNELS gave {other:?}"),
    }
    assert_untouched(&redis, &gw, &sha).await;
}

#[tokio::test]
async fn a_shared_tenant_keeps_its_own_scripts_functions_and_copies() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(two_tenants(&dir, &redis.url(), "")).await;
    seed(&redis, &gw).await;
    let ok = |v: Value| json!({ "result": v });
    // Scripts on its own keys, EVALSHA, EVAL_RO, the operator's harmless function.
    assert_eq!(
        gw.post_as(
            A,
            "/",
            json!([
                "EVAL",
                "return redis.call('INCRBY', KEYS[1], ARGV[1])",
                "1",
                "n",
                "5"
            ])
        )
        .await
        .1,
        ok(json!(5))
    );
    let (_, sha) = gw
        .post_as(
            A,
            "/",
            json!(["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"]),
        )
        .await;
    let sha = sha["result"].as_str().unwrap().to_string();
    assert_eq!(
        gw.post_as(A, "/", json!(["EVALSHA", sha, "1", "n"])).await.1,
        ok(json!("5"))
    );
    assert_eq!(
        gw.post_as(
            A,
            "/",
            json!(["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "mine"])
        )
        .await
        .1,
        ok(json!("a-data"))
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["FCALL", "own", "1", "mine"])).await.1,
        ok(json!("a-data"))
    );
    // COPY within its database, as Redis's COPY answers, TTL kept; REPLACE honoured.
    assert_eq!(
        gw.post_as(A, "/", json!(["SET", "ttl", "v", "PX", "60000"]))
            .await
            .0,
        200
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["COPY", "ttl", "copy"])).await.1,
        ok(json!(1))
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["COPY", "ttl", "copy"])).await.1,
        ok(json!(0))
    );
    assert_eq!(
        gw.post_as(A, "/", json!(["COPY", "nope", "x"])).await.1,
        ok(json!(0))
    );
    assert_eq!(
        gw.post_as(
            A,
            "/pipeline",
            json!([["COPY", "mine", "copy", "REPLACE"], ["GET", "copy"]])
        )
        .await
        .1,
        json!([{"result": 1}, {"result": "a-data"}])
    );
    let (_, ttl) = gw.post_as(A, "/", json!(["PTTL", "copy"])).await;
    assert_eq!(ttl, ok(json!(-1)), "REPLACE copies the source's (absent) TTL");
    gw.post_as(A, "/", json!(["COPY", "ttl", "copy2"])).await;
    let (_, ttl) = gw.post_as(A, "/", json!(["PTTL", "copy2"])).await;
    assert!(ttl["result"].as_i64().unwrap() > 50_000, "{ttl}");
    let (status, body) = gw.post_as(A, "/", json!(["COPY", "mine", "mine"])).await;
    assert_eq!(status, 400, "{body}");
    // In a transaction too.
    assert_eq!(
        gw.post_as(A, "/multi-exec", json!([["COPY", "mine", "tx"], ["GET", "tx"]]))
            .await
            .1,
        json!([{"result": 1}, {"result": "a-data"}])
    );
    // Its own database to flush, and b's data stays.
    assert_eq!(gw.post_as(A, "/", json!(["FLUSHDB"])).await.1, ok(json!("OK")));
    assert_eq!(
        gw.post_as(B, "/", json!(["GET", "secret"])).await.1,
        ok(json!("b-data"))
    );
}

#[tokio::test]
async fn isolation_is_set_up_again_after_a_redis_restart() {
    let mut redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(two_tenants(&dir, &redis.url(), "")).await;
    redis.restart();
    // The restarted Redis has no ACL users; the first requests may meet the reconnect.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = gw.post_as(B, "/", json!(["SET", "secret", "b-data"])).await;
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "b never got back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = gw.post_as(A, "/", peek()).await;
        if status != 503 {
            assert_eq!(status, 400, "{body}");
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "a never got back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!body.to_string().contains("b-data"), "{body}");
    // Streams log in as their own user, which the reconnect made again.
    let mut sub = Sse::open(&gw, "/subscribe/chat", A).await;
    assert_eq!(sub.next().await, "subscribe,chat,1");
}

#[tokio::test]
async fn a_redis_that_cannot_enforce_isolation_is_refused_unless_turned_off() {
    let redis = TestRedis::start();
    // A URL user that may not manage ACL users.
    redis.query(&["ACL", "SETUSER", "weak", "on", ">pw", "~*", "&*", "+@all", "-acl"]);
    let weak = redis.url().replace("redis://", "redis://weak:pw@");
    let dir = tempfile::tempdir().unwrap();
    let config =
        restdis::config::Config::resolve(&two_tenants(&dir, &weak, ""), &Default::default()).unwrap();
    let err = match restdis::server::Server::start(config).await {
        Ok(_) => panic!("started without isolation"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("shared_redis_isolation"), "{err}");
    assert!(err.contains("tenant 'a'"), "{err}");

    // Turned off explicitly: it starts, warns in /readyz, and the tenants are not isolated.
    let gw = Gateway::start_with(two_tenants(&dir, &weak, "shared_redis_isolation = \"off\"")).await;
    let body: Value = gw
        .http
        .get(format!("{}/readyz", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready");
    assert!(body["warning"].as_str().unwrap().contains("a, b"), "{body}");
    let bad = "bogus";
    let dir2 = tempfile::tempdir().unwrap();
    let cli = two_tenants(
        &dir2,
        &redis.url(),
        &format!("shared_redis_isolation = \"{bad}\""),
    );
    let err = restdis::config::Config::resolve(&cli, &Default::default()).unwrap_err();
    assert!(err.contains("shared_redis_isolation"), "{err}");
}

#[tokio::test]
async fn every_connection_of_a_shared_tenant_is_its_acl_user() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(two_tenants(
        &dir,
        &redis.url(),
        "[blocking]\nmode = \"dedicated\"\n",
    ))
    .await;
    // A dedicated blocking connection, a stream, and the shared connections of both tenants.
    gw.post_as(A, "/", json!(["RPUSH", "q", "job"])).await;
    assert_eq!(
        gw.post_as(A, "/", json!(["BLPOP", "q", "1"])).await.1,
        json!({"result": ["q", "job"]})
    );
    let mut sub = Sse::open(&gw, "/subscribe/chat", B).await;
    assert_eq!(sub.next().await, "subscribe,chat,1");
    let list = match redis.query(&["CLIENT", "LIST"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("CLIENT LIST gave {other:?}"),
    };
    let users: Vec<&str> = list
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("user=")))
        .collect();
    let mut seen: Vec<&str> = users.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["restdis-sub:b", "restdis:a", "restdis:b"], "{list}");
    // a's dedicated connection: in a's database, as a's user.
    assert!(
        list.lines()
            .any(|l| l.contains("user=restdis:a") && l.contains("db=1") && l.contains("cmd=blpop")),
        "{list}"
    );
}

#[tokio::test]
async fn one_redis_written_two_ways_is_still_shared() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let cli = tenants_at(&dir, &url.replace("127.0.0.1", "localhost"), &url, "");
    let gw = Gateway::start_with(cli).await;
    gw.post_as(B, "/", json!(["SET", "secret", "b-data"])).await;
    let (status, body) = gw.post_as(A, "/", peek()).await;
    assert_eq!(status, 400, "{body}");
}

/// A script that reads b's secret from database 2.
fn peek() -> Value {
    json!([
        "EVAL",
        "redis.call('SELECT', 2) return redis.call('GET', 'secret')",
        "0"
    ])
}
