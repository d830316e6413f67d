//! `restdis migrate` (the real binary) between real redis-servers and in-process restdis
//! gateways: every type, TTLs, binary keys and values, big keys, streams with groups, both
//! copy modes, REST on either side, checkpoints (a limited run, Ctrl-C) and `--verify`.
//! Destinations are compared with the source key by key.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use redis::Value;

use crate::harness::{binary, Gateway, TestRedis, TOKEN};

/// Runs `restdis migrate ARGS`.
async fn migrate(args: &[&str]) -> Output {
    let out = tokio::process::Command::new(binary())
        .arg("migrate")
        .args(args)
        .args(["--progress", "off"])
        .env_remove("UPSTASH_REDIS_REST_URL")
        .output()
        .await
        .unwrap();
    eprintln!(
        "migrate {args:?}: {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn conn(redis: &TestRedis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn q(c: &mut redis::Connection, args: &[&[u8]]) -> Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

fn flat(v: Value, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::BulkString(b) => out.push(b),
        Value::SimpleString(s) => out.push(s.into_bytes()),
        Value::Okay => out.push(b"OK".to_vec()),
        Value::Int(i) => out.push(i.to_string().into_bytes()),
        Value::Nil => out.push(b"(nil)".to_vec()),
        Value::Array(items) => items.into_iter().for_each(|i| flat(i, out)),
        other => panic!("unexpected {other:?}"),
    }
}

fn strings(v: Value) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    flat(v, &mut out);
    out
}

/// One key as the test compares it: type, value in a canonical order, PTTL, stream groups.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    kind: String,
    value: Vec<Vec<u8>>,
    pttl: i64,
    groups: Vec<Vec<u8>>,
}

/// Every key of a Redis with its value.
fn snapshot(redis: &TestRedis) -> BTreeMap<Vec<u8>, Key> {
    let mut c = conn(redis);
    let keys = strings(q(&mut c, &[b"KEYS", b"*"]));
    let mut out = BTreeMap::new();
    for k in keys {
        let kind = String::from_utf8(strings(q(&mut c, &[b"TYPE", &k])).remove(0)).unwrap();
        let k2 = k.as_slice();
        let mut value = match kind.as_str() {
            "string" => strings(q(&mut c, &[b"GET", k2])),
            "hash" => {
                let mut pairs: Vec<Vec<u8>> = strings(q(&mut c, &[b"HGETALL", k2]))
                    .chunks(2)
                    .map(|p| p.concat())
                    .collect();
                pairs.sort();
                pairs
            }
            "list" => strings(q(&mut c, &[b"LRANGE", k2, b"0", b"-1"])),
            "set" => strings(q(&mut c, &[b"SMEMBERS", k2])),
            // Scores as numbers: Valkey 8 and Redis 7.0 print doubles differently.
            "zset" => strings(q(&mut c, &[b"ZRANGE", k2, b"0", b"-1", b"WITHSCORES"]))
                .chunks(2)
                .flat_map(|p| {
                    let score: f64 = std::str::from_utf8(&p[1]).unwrap().parse().unwrap();
                    [p[0].clone(), score.to_string().into_bytes()]
                })
                .collect(),
            "stream" => strings(q(&mut c, &[b"XRANGE", k2, b"-", b"+"])),
            other => panic!("type {other}"),
        };
        if kind == "set" {
            value.sort();
        }
        let groups = if kind == "stream" {
            let mut g = Vec::new();
            for group in strings(q(&mut c, &[b"XINFO", b"GROUPS", k2])).chunks(12) {
                // name, last-delivered-id, entries-read (consumers and PEL are not compared)
                g.extend([group[1].clone(), group[7].clone(), group[9].clone()]);
            }
            g
        } else {
            Vec::new()
        };
        let pttl = match q(&mut c, &[b"PTTL", k2]) {
            Value::Int(i) => i,
            other => panic!("{other:?}"),
        };
        out.insert(
            k,
            Key {
                kind,
                value,
                pttl,
                groups,
            },
        );
    }
    out
}

/// The destination holds exactly the source's keys and values; a key with a TTL at the
/// source has one at the destination that ends no later (the destination is read after).
fn assert_same(src: &BTreeMap<Vec<u8>, Key>, dst: &BTreeMap<Vec<u8>, Key>) {
    let names = |m: &BTreeMap<Vec<u8>, Key>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(src), names(dst), "key sets differ");
    for (k, s) in src {
        let d = &dst[k];
        assert_eq!(
            (&s.kind, &s.value, &s.groups),
            (&d.kind, &d.value, &d.groups),
            "key {k:?}"
        );
        if s.pttl < 0 {
            assert_eq!(d.pttl, s.pttl, "key {k:?} got a TTL");
        } else {
            assert!(
                d.pttl > 0 && d.pttl <= s.pttl,
                "key {k:?}: TTL {} at the source, {} copied",
                s.pttl,
                d.pttl
            );
        }
    }
}

/// One key of each type, TTLs, binary keys and values, a stream with a consumer group.
fn fill_small(redis: &TestRedis) {
    let mut c = conn(redis);
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"str", b"hello"],
        vec![b"SET", b"ttl:str", b"soon", b"PX", b"600000"],
        vec![b"SET", b"bin:\x00\xff\r\n", b"\xff\xfe\x00value\r\n"],
        vec![b"SET", b"empty", b""],
        vec![b"HSET", b"hash", b"a", b"1", b"\xff", b"\x00\x01"],
        vec![b"PEXPIRE", b"hash", b"500000"],
        vec![b"RPUSH", b"list", b"x", b"y", b"x", b"\xfe"],
        vec![b"SADD", b"set", b"m", b"n", b"\x80"],
        vec![
            b"ZADD",
            b"zset",
            b"1.5",
            b"a",
            b"-inf",
            b"b",
            b"3.141592653589793",
            b"\xff",
        ],
        vec![b"XADD", b"stream", b"1-1", b"f", b"v"],
        vec![b"XADD", b"stream", b"2-5", b"f", b"\xff", b"g", b"h"],
        vec![b"XGROUP", b"CREATE", b"stream", b"grp", b"0"],
        vec![
            b"XREADGROUP",
            b"GROUP",
            b"grp",
            b"c1",
            b"COUNT",
            b"1",
            b"STREAMS",
            b"stream",
            b">",
        ],
        vec![b"SET", b"gone", b"x", b"PX", b"1"],
    ];
    for cmd in cmds {
        q(&mut c, &cmd);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while q(&mut c, &[b"EXISTS", b"gone"]) != Value::Int(0) {
        assert!(Instant::now() < deadline, "a 1 ms TTL did not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_to_redis_in_both_modes_copies_every_type() {
    let src = TestRedis::start();
    fill_small(&src);
    let before = snapshot(&src);
    for mode in ["dump", "logical", "auto"] {
        let dst = TestRedis::start();
        let out = migrate(&[
            "--from",
            &src.url(),
            "--to",
            &dst.url(),
            "--mode",
            mode,
            "--verify",
        ])
        .await;
        assert!(out.status.success(), "{mode}");
        let copied = snapshot(&dst);
        assert!(
            !copied.contains_key(b"gone".as_slice()),
            "an expired key came back"
        );
        assert_same(&before, &copied);
        // A second run refuses to overwrite by default, skips or replaces when asked.
        let again = migrate(&["--from", &src.url(), "--to", &dst.url(), "--mode", mode]).await;
        assert_eq!(again.status.code(), Some(1));
        assert!(stdout(&again).contains("exists at the destination"));
        let skip = migrate(&[
            "--from",
            &src.url(),
            "--to",
            &dst.url(),
            "--mode",
            mode,
            "--skip-existing",
        ])
        .await;
        assert!(skip.status.success());
        assert!(stdout(&skip).contains("0 copied, 9 skipped"), "{mode}");
        let replace = migrate(&[
            "--from",
            &src.url(),
            "--to",
            &dst.url(),
            "--mode",
            mode,
            "--replace",
        ])
        .await;
        assert!(replace.status.success());
        assert_same(&snapshot(&src), &snapshot(&dst));
    }
}

/// 200,000 hash fields, a 1 MB string and binary data through REST both ways: Redis →
/// restdis → Redis, then export through restdis → another Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_keys_through_rest_both_ways() {
    let src = TestRedis::start();
    fill_small(&src);
    let mut c = conn(&src);
    for chunk in 0..200 {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("big:hash");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            cmd.arg(format!("field:{i}")).arg(format!("value:{i}"));
        }
        let _: i64 = cmd.query(&mut c).unwrap();
    }
    let mb: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let _: () = redis::cmd("SET")
        .arg(b"big:\xffstring".as_slice())
        .arg(&mb)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("big:text")
        .arg("é".repeat(300_000))
        .query(&mut c)
        .unwrap();
    let before = snapshot(&src);

    let middle = TestRedis::start();
    let gw = Gateway::start(&middle).await;
    for mode in ["auto", "logical"] {
        let _: () = redis::cmd("FLUSHALL").query(&mut conn(&middle)).unwrap();
        let out = migrate(&[
            "--from",
            &src.url(),
            "--to",
            &gw.url,
            "--to-token",
            TOKEN,
            "--mode",
            mode,
        ])
        .await;
        assert!(out.status.success(), "{mode}");
        assert_same(&before, &snapshot(&middle));
    }
    let last = TestRedis::start();
    let out = migrate(&[
        "--from",
        &gw.url,
        "--from-token",
        TOKEN,
        "--to",
        &last.url(),
        "--verify",
    ])
    .await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("0 differ"));
    assert_same(&before, &snapshot(&last));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_run_continues_from_its_checkpoint() {
    let src = TestRedis::start();
    let mut c = conn(&src);
    for chunk in 0..4 {
        let mut cmd = redis::cmd("MSET");
        for i in chunk * 500..(chunk + 1) * 500 {
            cmd.arg(format!("k{i}")).arg(i);
        }
        let _: () = cmd.query(&mut c).unwrap();
    }
    let dst = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let cp = cp.to_str().unwrap();
    let common = [
        "--from",
        &src.url(),
        "--to",
        &dst.url(),
        "--checkpoint",
        cp,
        "--batch",
        "100",
    ];
    let first = migrate(&[&common[..], &["--limit", "500"]].concat()).await;
    assert!(first.status.success());
    let copied = snapshot(&dst).len();
    assert!((500..2000).contains(&copied), "{copied} keys after the first run");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(cp).unwrap()).unwrap();
    assert_eq!(saved["finished"], false);
    assert_eq!(saved["counts"]["copied"], copied as u64);

    let second = migrate(&common).await;
    assert!(
        second.status.success(),
        "the re-run found keys of the first run again"
    );
    assert!(stdout(&second).contains("2000 keys"));
    assert_same(&snapshot(&src), &snapshot(&dst));
    let third = migrate(&common).await;
    assert!(third.status.success());
    assert!(String::from_utf8_lossy(&third.stderr).contains("finished"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_saves_the_checkpoint_and_a_rerun_completes() {
    let src = TestRedis::start();
    let mut c = conn(&src);
    let mut cmd = redis::cmd("MSET");
    for i in 0..3000 {
        cmd.arg(format!("k{i}")).arg(i);
    }
    let _: () = cmd.query(&mut c).unwrap();
    let dst = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let cp = cp.to_str().unwrap();
    let (from, to) = (src.url(), dst.url());
    let args = [
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--checkpoint",
        cp,
        "--batch",
        "50",
        "--rate",
        "3000",
    ];
    let child = tokio::process::Command::new(binary())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the copy is under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while q(&mut conn(&dst), &[b"DBSIZE"]) == Value::Int(0) {
        assert!(Instant::now() < deadline, "nothing was copied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().await.unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(cp).unwrap()).unwrap();
    assert_eq!(saved["finished"], false);
    assert!(
        snapshot(&dst).len() < 3000,
        "the copy finished before the interrupt"
    );

    let rerun = migrate(&["--from", &from, "--to", &to, "--checkpoint", cp]).await;
    assert!(rerun.status.success());
    assert_same(&snapshot(&src), &snapshot(&dst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_planted_difference() {
    let src = TestRedis::start();
    fill_small(&src);
    let dst = TestRedis::start();
    assert!(migrate(&["--from", &src.url(), "--to", &dst.url()])
        .await
        .status
        .success());
    let mut d = conn(&dst);
    q(&mut d, &[b"HSET", b"hash", b"a", b"changed"]);
    q(&mut d, &[b"DEL", b"list"]);
    q(&mut d, &[b"PERSIST", b"ttl:str"]);
    let out = migrate(&[
        "--from",
        &src.url(),
        "--to",
        &dst.url(),
        "--skip-existing",
        "--verify",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("differs: \"hash\": value differs"), "{text}");
    assert!(
        text.contains("\"ttl:str\": TTL set at the source, none at the destination"),
        "{text}"
    );
    // The deleted list was copied again by this run, so it is not a difference.
    assert!(text.contains("2 differ"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_and_writes_nothing() {
    let src = TestRedis::start();
    fill_small(&src);
    let dst = TestRedis::start();
    let out = migrate(&[
        "--from",
        &src.url(),
        "--to",
        &dst.url(),
        "--dry-run",
        "--match",
        "*str*",
    ])
    .await;
    assert!(out.status.success());
    let mut lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["\"str\" string", "\"stream\" stream", "\"ttl:str\" string"]
    );
    assert!(snapshot(&dst).is_empty());
}

/// Keys that expire while the copy runs are never left behind without a TTL (the copy
/// writes an absolute expiry, so a key copied late is gone or expires with its original).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expiring_during_the_copy_are_not_resurrected() {
    for mode in ["dump", "logical"] {
        let src = TestRedis::start();
        let mut c = conn(&src);
        for i in 0..3000 {
            let ttl = if i % 3 == 0 { 1 + i % 700 } else { 600_000 };
            let _: () = redis::cmd("SET")
                .arg(format!("t{i}"))
                .arg(i)
                .arg("PX")
                .arg(ttl)
                .query(&mut c)
                .unwrap();
        }
        let dst = TestRedis::start();
        let out = migrate(&[
            "--from",
            &src.url(),
            "--to",
            &dst.url(),
            "--mode",
            mode,
            "--batch",
            "100",
            "--rate",
            "6000",
        ])
        .await;
        assert!(out.status.success(), "{mode}");
        let mut d = conn(&dst);
        for k in strings(q(&mut d, &[b"KEYS", b"*"])) {
            let Value::Int(pttl) = q(&mut d, &[b"PTTL", &k]) else {
                panic!()
            };
            assert!(pttl != -1, "{mode}: {} lost its TTL", String::from_utf8_lossy(&k));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_and_type_filters() {
    let src = TestRedis::start();
    let mut c = redis::Client::open(format!("{}/2", src.url()))
        .unwrap()
        .get_connection()
        .unwrap();
    q(&mut c, &[b"SET", b"in-db-2", b"x"]);
    q(&mut c, &[b"HSET", b"hash-in-db-2", b"f", b"v"]);
    q(&mut conn(&src), &[b"SET", b"in-db-0", b"x"]);
    let dst = TestRedis::start();
    let out = migrate(&[
        "--from",
        &src.url(),
        "--db",
        "2",
        "--to",
        &dst.url(),
        "--type",
        "hash",
    ])
    .await;
    assert!(out.status.success());
    let keys: Vec<Vec<u8>> = snapshot(&dst).into_keys().collect();
    assert_eq!(keys, [b"hash-in-db-2".to_vec()]);
}

/// Valkey 8 writes DUMP payloads Redis 7.0 cannot read: auto mode says so once and copies
/// logically. Runs when `VALKEY_SERVER` names a valkey-server binary (docs/testing.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_to_redis_falls_back_to_logical() {
    let Ok(valkey) = std::env::var("VALKEY_SERVER") else {
        eprintln!("skipped: set VALKEY_SERVER=/path/to/valkey-server to run it");
        return;
    };
    let src = TestRedis::start_bin(&valkey);
    fill_small(&src);
    let before = snapshot(&src);
    let dst = TestRedis::start();
    let out = migrate(&["--from", &src.url(), "--to", &dst.url(), "--verify"]).await;
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("payload version or checksum").count(), 1, "{err}");
    assert_same(&before, &snapshot(&dst));
    // The other way, Redis 7.0 payloads restore on Valkey 8 as they are.
    let back = TestRedis::start_bin(&valkey);
    let out = migrate(&["--from", &dst.url(), "--to", &back.url(), "--mode", "dump"]).await;
    assert!(out.status.success());
    assert_same(&before, &snapshot(&back));
}

#[tokio::test]
async fn bad_input_is_one_line_and_exit_code_2() {
    let cases: &[&[&str]] = &[
        &["--from", "redis+cluster://h:1", "--to", "redis://h:2"],
        &["--from", "redis://h:1", "--to", "https://x.example"],
        &["--from", "redis://h:1", "--to", "redis://h:2", "--mode", "fast"],
        &["--from", "redis://h:1", "--to", "redis://h:1"],
        &["--from", "redis://h:1", "--to", "redis://h:2", "--type", "blob"],
        &["--from", "nope", "--to", "redis://h:2"],
    ];
    for args in cases {
        let out = migrate(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
