//! TLS and HTTP/2 on the API listener: curl over HTTP/1.1 and HTTP/2 (ALPN, prior knowledge)
//! against TLS and plain listeners, a Rust HTTP/2 client, server-sent events over HTTP/2,
//! certificate reload (by call and by file change) with a connection kept open across it,
//! the start-up errors, and hostile clients on the TLS port. Certificates are made in the test
//! with `openssl`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use restdis::cli::Cli;
use restdis::config::Config;
use restdis::server::Server;
use serde_json::{json, Value};

use crate::config::{check, restdis};
use crate::harness::{cli_for, openssl, TestRedis, TOKEN};
use crate::stalled::metric;

/// A CA (`NAME-ca.pem`) and a certificate for localhost/127.0.0.1 it signed (`NAME.pem`,
/// `NAME.key`), valid from `start` to `end` (`YYYYMMDDHHMMSSZ`).
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn issue(dir: &Path, name: &str, start: &str, end: &str) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj"]);
    let ca_subject = format!("/CN=restdis test CA {name}");
    args.push(&ca_subject);
    openssl(dir, &args);
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    args.extend(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
    openssl(dir, &args);
    // `openssl ca` takes explicit dates (so an expired certificate can be made).
    let db = format!("{name}-index.txt");
    std::fs::write(dir.join(&db), "").unwrap();
    std::fs::write(dir.join(format!("{name}-serial")), "01\n").unwrap();
    let cnf = format!("{name}-ca.cnf");
    std::fs::write(
        dir.join(&cnf),
        format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {db}\nnew_certs_dir = .\nserial = {name}-serial\n\
             default_md = sha256\npolicy = p\ncopy_extensions = copy\n[p]\ncommonName = supplied\n"
        ),
    )
    .unwrap();
    let cert = format!("{name}.pem");
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            &cnf,
            "-cert",
            &ca,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &cert,
            "-startdate",
            start,
            "-enddate",
            end,
        ],
    );
    Certs {
        ca: dir.join(ca),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

const START: &str = "20200101000000Z";
const END: &str = "20991231000000Z";

/// restdis serving TLS with `certs` in front of `redis`.
async fn start_tls(redis: &TestRedis, certs: &Certs, limits: Option<&Path>) -> Server {
    let cli = Cli {
        tls_cert: Some(certs.cert.clone()),
        tls_key: Some(certs.key.clone()),
        config: limits.map(Path::to_path_buf),
        ..cli_for(redis)
    };
    start(cli).await
}

async fn start(cli: Cli) -> Server {
    let config = Config::resolve(&cli, &Default::default()).unwrap();
    let server = Server::start(config).await.unwrap();
    for backend in &server.state.tenancy().backends {
        assert!(backend.wait_connected(Duration::from_secs(10)).await);
    }
    server
}

/// curl with `args`: the body and the HTTP version it used (`1.1`, `2`).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .args(["-w", "\n%{http_version}"])
        .args(args)
        .output()
        .expect("curl is needed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, version) = text.rsplit_once('\n').unwrap();
    (body.to_string(), version.to_string())
}

/// The same requests through curl with `flags`; answers must not depend on the HTTP version.
fn exchange(base: &str, flags: &[&str]) -> (Vec<Value>, String) {
    let mut answers = Vec::new();
    let mut version = String::new();
    let mut go = |path: &str, body: Option<&str>, extra: &[&str]| {
        let url = format!("{base}{path}");
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(extra);
        if let Some(b) = body {
            args.extend(["-X", "POST", "--data-binary", b]);
        }
        args.push(&url);
        let (text, v) = curl(&args);
        answers.push(serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("{path}: {text}")));
        version = v;
    };
    go("/", Some(r#"["SET","k","v1"]"#), &[]);
    go("/get/k", None, &[]);
    go("/pipeline", Some(r#"[["INCR","n"],["GET","k"]]"#), &[]);
    go("/multi-exec", Some(r#"[["DEL","n"],["GET","k"]]"#), &[]);
    go("/", Some(r#"["GET","k"]"#), &["-H", "Upstash-Encoding: base64"]);
    go("/", Some(r#"["NOSUCHCOMMAND"]"#), &[]);
    (answers, version)
}

/// A TLS listener and a plain one in front of one Redis.
struct Both {
    _dir: tempfile::TempDir,
    certs: Certs,
    redis: TestRedis,
    tls: Server,
    plain: Server,
    /// `https://127.0.0.1:PORT` of `tls`.
    https: String,
    /// `http://127.0.0.1:PORT` of `plain`.
    http: String,
}

impl Both {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = issue(dir.path(), "a", START, END);
        let redis = TestRedis::start();
        let tls = start_tls(&redis, &certs, None).await;
        let plain = start(cli_for(&redis)).await;
        Self {
            https: format!("https://127.0.0.1:{}", tls.api_addr.port()),
            http: format!("http://{}", plain.api_addr),
            _dir: dir,
            certs,
            redis,
            tls,
            plain,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_speaks_http1_and_http2_over_tls_and_plain() {
    let b = Both::start().await;
    let (https, http) = (&b.https, &b.http);
    let ca = b.certs.ca.to_string_lossy().into_owned();
    let cases: Vec<(&String, Vec<&str>, &str)> = vec![
        (https, vec!["--cacert", &ca, "--http1.1"], "1.1"),
        (https, vec!["--cacert", &ca, "--http2"], "2"),
        (https, vec!["--cacert", &ca, "--http2-prior-knowledge"], "2"),
        // No ALPN: hyper-util's automatic builder tells the version from the first bytes.
        (https, vec!["--cacert", &ca, "--no-alpn", "--http1.1"], "1.1"),
        (
            https,
            vec!["--cacert", &ca, "--tlsv1.2", "--tls-max", "1.2", "--http2"],
            "2",
        ),
        (http, vec!["--http1.1"], "1.1"),
        (http, vec!["--http2-prior-knowledge"], "2"),
        // h2c by Upgrade is not offered: the request is answered over HTTP/1.1.
        (http, vec!["--http2"], "1.1"),
    ];
    let mut first: Option<Vec<Value>> = None;
    for (base, flags, want) in &cases {
        let (answers, version) = exchange(base, flags);
        assert_eq!(&version, want, "{base} {flags:?}");
        match &first {
            None => first = Some(answers),
            Some(f) => assert_eq!(f, &answers, "{base} {flags:?}"),
        }
    }
    let first = first.unwrap();
    assert_eq!(first[0], json!({"result": "OK"}));
    assert_eq!(first[4], json!({"result": "djE="}));
    assert!(first[5]["error"].is_string(), "{}", first[5]);
    b.tls.shutdown().await;
    b.plain.shutdown().await;
}

/// A reqwest client that trusts only `ca` (rustls), HTTP/2 by ALPN.
fn client_trusting(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// `POST {base}{path}` with the full token and `body`.
async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &'static str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .header("Accept", "text/event-stream")
        .body(body)
        .send()
        .await
}

/// `["PING"]` answered with PONG: the HTTP version it went over, or the client's error.
async fn ping(client: &reqwest::Client, base: &str) -> Result<reqwest::Version, String> {
    let resp = post(client, base, "/", r#"["PING"]"#)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let version = resp.version();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    assert_eq!(body, json!({"result": "PONG"}));
    Ok(version)
}

/// Reads server-sent events from a response until `want` is among the data lines.
async fn read_event(resp: &mut reqwest::Response, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.lines().any(|l| l == format!("data: {want}")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no '{want}' in time; got {seen:?}"))
            .unwrap()
            .expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_http2_client_and_server_sent_events_over_http2() {
    let b = Both::start().await;
    let (https, http) = (&b.https, &b.http);
    let h2_tls = client_trusting(&b.certs.ca);
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert_eq!(ping(&h2_tls, https).await.unwrap(), reqwest::Version::HTTP_2);
    assert_eq!(ping(&h2c, http).await.unwrap(), reqwest::Version::HTTP_2);

    for (client, base) in [(&h2_tls, https), (&h2c, http)] {
        let mut sub = post(client, base, "/subscribe/news", "[]").await.unwrap();
        assert_eq!(sub.version(), reqwest::Version::HTTP_2);
        assert_eq!(sub.status(), 200);
        assert_eq!(sub.headers()["content-type"], "text/event-stream");
        read_event(&mut sub, "subscribe,news,1").await;
        // Requests keep flowing on the same HTTP/2 connection as the stream.
        let resp = post(client, base, "/", r#"["PUBLISH","news","hello over h2"]"#)
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"result": 1}));
        read_event(&mut sub, "message,news,hello over h2").await;
        drop(sub);
        // restdis closes the stream's Redis connection once it sees the stream gone: wait for
        // that, so that the next PUBLISH counts only the next stream.
        let started = std::time::Instant::now();
        loop {
            let resp = post(client, base, "/", r#"["PUBSUB","NUMSUB","news"]"#)
                .await
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            if body == json!({"result": ["news", 0]}) {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the dropped stream still subscribes: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    // A request in flight over HTTP/2 when shutdown begins still gets its answer.
    let stall = b.redis.stall(1);
    let in_flight = {
        let (client, base) = (h2c.clone(), http.clone());
        tokio::spawn(async move { ping(&client, &base).await })
    };
    // The request is on its way before shutdown starts (it waits at the stalled Redis).
    let (metrics_client, admin) = (reqwest::Client::new(), admin_url(&b.plain));
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&metrics_client, &admin, "restdis_redis_requests_in_flight{").await < 1.0 {
        assert!(Instant::now() < deadline, "the request never reached Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shutdown = tokio::spawn(b.plain.shutdown());
    assert_eq!(in_flight.await.unwrap().unwrap(), reqwest::Version::HTTP_2);
    shutdown.await.unwrap();
    stall.join().unwrap();
    b.tls.shutdown().await;
}

fn admin_url(server: &Server) -> String {
    format!("http://{}", server.admin_addr.unwrap())
}

/// A TLS metric's value.
async fn tls_metric(server: &Server, name: &str) -> f64 {
    metric(&reqwest::Client::new(), &admin_url(server), name).await
}

/// The files served: a copy of `first`'s in `d`, overwritten later.
fn served_copy(d: &Path, first: &Certs) -> Certs {
    let served = Certs {
        ca: first.ca.clone(),
        cert: d.join("served.pem"),
        key: d.join("served.key"),
    };
    copy(first, &served);
    served
}

fn copy(from: &Certs, to: &Certs) {
    std::fs::copy(&from.cert, &to.cert).unwrap();
    std::fs::copy(&from.key, &to.key).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_dropping_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = issue(d, "a", START, END);
    let b = issue(d, "b", START, END);
    let c = issue(d, "c", START, END);
    let served = served_copy(d, &a);
    let redis = TestRedis::start();
    let server = start_tls(&redis, &served, None).await;
    let base = format!("https://127.0.0.1:{}", server.api_addr.port());
    let old = client_trusting(&a.ca);
    assert_eq!(ping(&old, &base).await.unwrap(), reqwest::Version::HTTP_2);
    let tls = server.state.tls.clone().unwrap();

    // A key that does not match: refused, counted, the old certificate stays.
    std::fs::copy(&b.cert, &served.cert).unwrap();
    let err = tls.reload().unwrap_err();
    assert!(err.contains("does not match"), "{err}");
    assert_eq!(tls_metric(&server, "restdis_tls_reload_errors_total").await, 1.0);
    assert!(ping(&client_trusting(&a.ca), &base).await.is_ok());

    // A good pair: new handshakes get it; the open connection stays (a new connection of `old`
    // would fail, as it trusts only CA a).
    copy(&b, &served);
    tls.reload().unwrap();
    assert!(ping(&client_trusting(&b.ca), &base).await.is_ok());
    let refused = ping(&client_trusting(&a.ca), &base).await.unwrap_err();
    assert!(
        refused.contains("certificate") || refused.contains("Certificate"),
        "{refused}"
    );
    assert_eq!(ping(&old, &base).await.unwrap(), reqwest::Version::HTTP_2);
    assert_eq!(tls_metric(&server, "restdis_tls_reloads_total").await, 1.0);

    // Changed files are picked up without a call.
    copy(&c, &served);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ping(&client_trusting(&c.ca), &base).await.is_err() {
        assert!(Instant::now() < deadline, "the changed files were not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ping(&old, &base).await.unwrap(), reqwest::Version::HTTP_2);
    server.shutdown().await;
}

/// `restdis --check-config` with `args` and `env`: exit code and output.
fn check_with(args: &[&Path], env: &[(&str, &Path)]) -> (i32, String) {
    check(restdis().args(args).envs(env.iter().copied()))
}

#[test]
fn bad_certificates_stop_the_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = issue(d, "a", START, END);
    let b = issue(d, "b", START, END);
    let old = issue(d, "old", "20200101000000Z", "20200102000000Z");
    let not_pem = d.join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = d.join("missing.pem");
    let flag = |s: &'static str| Path::new(s);
    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![flag("--tls-cert"), &a.cert], "--tls-key"),
        (vec![flag("--tls-key"), &a.key], "--tls-cert"),
        (
            vec![flag("--tls-cert"), &missing, flag("--tls-key"), &a.key],
            "cannot read",
        ),
        (
            vec![flag("--tls-cert"), &not_pem, flag("--tls-key"), &a.key],
            "holds no PEM certificate",
        ),
        (
            vec![flag("--tls-cert"), &a.cert, flag("--tls-key"), &not_pem],
            "holds no PEM private key",
        ),
        (
            vec![flag("--tls-cert"), &a.cert, flag("--tls-key"), &b.key],
            "does not match",
        ),
        (
            vec![flag("--tls-cert"), &old.cert, flag("--tls-key"), &old.key],
            "expired at 2020-01-02T00:00:00Z",
        ),
    ];
    for (args, want) in cases {
        let (code, out) = check_with(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(want), "{args:?}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{args:?}: {out}");
    }
    let (code, out) = check_with(&[], &[("RESTDIS_TLS_CERT", &a.cert), ("RESTDIS_TLS_KEY", &a.key)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tls: cert"), "{out}");
    let file = d.join("restdis.toml");
    std::fs::write(&file, format!("[tls]\ncert = {:?}\nkey = {:?}\n", a.cert, b.key)).unwrap();
    let (code, out) = check_with(&[flag("--config"), &file], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not match"), "{out}");
}

/// Reads from `s` until the server closes it (or 10 s pass): whether it closed.
fn closed_by_server(s: &mut std::net::TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_garbage_and_silence_on_the_tls_port_disturb_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = issue(dir.path(), "a", START, END);
    let limits = dir.path().join("limits.toml");
    std::fs::write(&limits, "[limits]\nheader_read_timeout = \"1s\"\n").unwrap();
    let redis = TestRedis::start();
    let server = start_tls(&redis, &certs, Some(&limits)).await;
    let plain = start(Cli {
        config: Some(limits.clone()),
        ..cli_for(&redis)
    })
    .await;
    let base = format!("https://127.0.0.1:{}", server.api_addr.port());
    let kept = client_trusting(&certs.ca);
    assert!(ping(&kept, &base).await.is_ok());
    let addr = server.api_addr;
    let clients = tokio::task::spawn_blocking(move || {
        // Plain HTTP: the handshake fails and the connection closes.
        let mut http = std::net::TcpStream::connect(addr).unwrap();
        http.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // Garbage.
        let mut garbage = std::net::TcpStream::connect(addr).unwrap();
        garbage
            .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
            .unwrap();
        // Silence: the handshake deadline (the header read timeout) closes it.
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        // On the plain listener, three bytes of the HTTP/2 preface and then silence.
        let mut half_preface = std::net::TcpStream::connect(plain.api_addr).unwrap();
        half_preface.write_all(b"PRI").unwrap();
        // The whole preface and then silence (no SETTINGS frame).
        let mut preface_only = std::net::TcpStream::connect(plain.api_addr).unwrap();
        preface_only
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        let closed = [
            closed_by_server(&mut http),
            closed_by_server(&mut garbage),
            closed_by_server(&mut silent),
            closed_by_server(&mut half_preface),
            closed_by_server(&mut preface_only),
        ];
        (closed, plain)
    });
    // Meanwhile the open connection and new ones are served.
    for _ in 0..5 {
        assert_eq!(ping(&kept, &base).await.unwrap(), reqwest::Version::HTTP_2);
        assert!(ping(&client_trusting(&certs.ca), &base).await.is_ok());
    }
    let (closed, plain) = clients.await.unwrap();
    assert_eq!(
        closed, [true; 5],
        "plain HTTP, garbage, silence, half a preface, a preface alone"
    );
    assert!(tls_metric(&server, "restdis_tls_handshake_errors_total").await >= 3.0);
    assert_eq!(ping(&kept, &base).await.unwrap(), reqwest::Version::HTTP_2);
    server.shutdown().await;
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_holds_its_place_among_max_connections_until_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let certs = issue(dir.path(), "a", START, END);
    let limits = dir.path().join("limits.toml");
    std::fs::write(
        &limits,
        "[limits]\nmax_connections = 1\nheader_read_timeout = \"1s\"\n",
    )
    .unwrap();
    let redis = TestRedis::start();
    let server = start_tls(&redis, &certs, Some(&limits)).await;
    let base = format!("https://127.0.0.1:{}", server.api_addr.port());
    // A client that never starts its handshake takes the only place...
    let mut silent = std::net::TcpStream::connect(server.api_addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // (The scrape's own admin connection is counted too.)
    while tls_metric(&server, "restdis_http_open_connections").await < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the silent connection was not accepted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... so another is closed right after accept...
    assert!(ping(&client_trusting(&certs.ca), &base).await.is_err());
    // ... until the handshake deadline closes the silent one.
    let closed = tokio::task::spawn_blocking(move || closed_by_server(&mut silent))
        .await
        .unwrap();
    assert!(closed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ping(&client_trusting(&certs.ca), &base).await.is_err() {
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tls_metric(&server, "restdis_tls_handshake_errors_total").await >= 1.0);
    server.shutdown().await;
}

/// `POST /reload` (as SIGHUP) re-reads the certificate with the configuration, on every worker:
/// a pair that does not load fails the whole reload and changes nothing; a good one is served to
/// new connections at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_reload_reloads_the_certificate_on_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (issue(d, "a", START, END), issue(d, "b", START, END));
    let served = served_copy(d, &a);
    let redis = TestRedis::start();
    let cli = Cli {
        tls_cert: Some(served.cert.clone()),
        tls_key: Some(served.key.clone()),
        worker_threads: Some("2".into()),
        ..cli_for(&redis)
    };
    let config = Config::resolve(&cli, &Default::default()).unwrap();
    let source = restdis::reload::Source {
        cli,
        env: Default::default(),
    };
    let server = Server::start_with(config, Some(source)).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.api_addr.port());
    let reload = || async {
        let resp = reqwest::Client::new()
            .post(format!("{}/reload", admin_url(&server)))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap())
    };
    // A certificate without its key: the reload fails whole.
    std::fs::copy(&b.cert, &served.cert).unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("does not match"),
        "{body}"
    );
    for _ in 0..8 {
        // Fresh clients: new connections, on either worker.
        assert!(ping(&client_trusting(&a.ca), &base).await.is_ok());
    }
    copy(&b, &served);
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tls_certificate"], "reloaded", "{body}");
    for _ in 0..8 {
        assert!(ping(&client_trusting(&b.ca), &base).await.is_ok());
    }
    server.shutdown().await;
}
