//! The web console's HTTP side (`src/http/console.rs`): the page and its assets with their
//! types, caching and security headers, the off switch, and the auth of its JSON endpoints.
//! (The page itself is tested in a real browser by tests/console/run.sh.)

use serde_json::Value;

use crate::harness::{cli_for, Gateway, TestRedis, RO_TOKEN, TOKEN};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn serves_the_page_and_assets_with_types_csp_and_caching() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for (path, ty) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/browser.js", "text/javascript; charset=utf-8"),
    ] {
        let resp = gw.http.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "content-type"), ty, "{path}");
        assert_eq!(header(&resp, "content-security-policy"), CSP, "{path}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(header(&resp, "cache-control"), "no-cache");
        let etag = header(&resp, "etag").to_string();
        let body = resp.text().await.unwrap();
        assert!(!body.is_empty());
        // A current copy is revalidated without a body.
        let again = gw
            .http
            .get(format!("{}{path}", gw.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // The page loads only its own files: no inline script, no CDN.
    let page = gw
        .http
        .get(format!("{}/console", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external URL"
    );
    assert!(
        !page.contains("style=") && !page.contains("onclick"),
        "no inline style or handler"
    );

    // Unknown files are a JSON 404 (still with the headers), never a Redis command.
    let resp = gw
        .http
        .get(format!("{}/console/nope.js", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(header(&resp, "content-security-policy"), CSP);
    // Only GET and HEAD.
    let resp = gw.post_raw("/console", "[]").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(header(&resp, "allow"), "GET, HEAD");
    // The path form of a command is unchanged beside it.
    assert_eq!(
        gw.get_path("/set/console/1").await,
        (200, serde_json::json!({"result": "OK"}))
    );
    assert_eq!(
        gw.get_path("/get/console").await,
        (200, serde_json::json!({"result": "1"}))
    );
    // Console requests have a metrics route of their own (not `single`): the six files and the
    // page once more.
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("restdis_http_requests_total{")
                && l.contains(r#"route="console""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no console series in {metrics}"));
    assert_eq!(line.rsplit(' ').next(), Some("7"), "{line}");
    gw.shutdown().await;
}

#[tokio::test]
async fn usage_and_session_need_a_token_of_the_tenant() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    gw.cmd(serde_json::json!(["SET", "a", "1"])).await;
    for path in ["/console/api/usage", "/console/api/session"] {
        let resp = gw.http.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let resp = gw
            .http
            .get(format!("{}{path}", gw.url))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let get = |token: &'static str, path: &'static str| {
        let req = gw.http.get(format!("{}{path}", gw.url)).bearer_auth(token);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(header(&resp, "cache-control"), "no-store");
            assert_eq!(header(&resp, "content-security-policy"), CSP);
            resp.json::<Value>().await.unwrap()
        }
    };
    let usage = get(TOKEN, "/console/api/usage").await;
    assert_eq!(usage["tenant"], "default");
    assert!(usage["day"]["commands"].as_u64().unwrap() >= 1, "{usage}");
    assert!(
        usage["limits"].is_object() && usage["thresholds"].is_array(),
        "{usage}"
    );
    assert!(usage["requests_since_start"].as_u64().unwrap() >= 1, "{usage}");
    // The same numbers the admin listener's /usage shows for the tenant.
    let admin: Value = gw
        .http
        .get(format!("{}/usage", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["tenants"][0]["day"]["commands"], usage["day"]["commands"]);
    assert_eq!(get(RO_TOKEN, "/console/api/usage").await["tenant"], "default");
    assert_eq!(
        get(TOKEN, "/console/api/session").await,
        serde_json::json!({"tenant": "default", "read_only": false})
    );
    assert_eq!(
        get(RO_TOKEN, "/console/api/session").await,
        serde_json::json!({"tenant": "default", "read_only": true})
    );
    gw.shutdown().await;
}

/// With the admin token (not a tenant's), the console's endpoints show every tenant side by
/// side; without an admin token configured, it is just a wrong token.
#[tokio::test]
async fn the_admin_token_sees_every_tenant_in_the_console() {
    let redis = TestRedis::start();
    let cli = restdis::cli::Cli {
        admin_token: Some("console-admin".into()),
        ..crate::harness::cli_for(&redis)
    };
    let gw = Gateway::start_with(cli).await;
    gw.cmd(serde_json::json!(["SET", "a", "1"])).await;
    let get = |token: &'static str, path: &'static str| {
        let req = gw.http.get(format!("{}{path}", gw.url)).bearer_auth(token);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, session) = get("console-admin", "/console/api/session").await;
    assert_eq!(status, 200);
    assert_eq!(session["admin"], true);
    let (status, usage) = get("console-admin", "/console/api/usage").await;
    assert_eq!(status, 200);
    let tenants = usage["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0]["tenant"], "default");
    assert!(tenants[0]["day"]["commands"].as_u64().unwrap() >= 1, "{usage}");
    // The admin token is no tenant's token: the REST API refuses it.
    assert_eq!(
        gw.post_as("console-admin", "/", serde_json::json!(["GET", "a"]))
            .await
            .0,
        401
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_off_switch_turns_every_console_path_into_a_404() {
    let redis = TestRedis::start();
    let mut cli = cli_for(&redis);
    cli.console = Some("off".into());
    let gw = Gateway::start_with(cli).await;
    for path in ["/console", "/console/app.js", "/console/api/usage"] {
        let resp = gw
            .http
            .get(format!("{}{path}", gw.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("console is off"),
            "{body}"
        );
    }
    gw.shutdown().await;
}

#[test]
fn the_switch_defaults_to_on_for_loopback_only() {
    use restdis::cli::Cli;
    use restdis::config::Config;
    let resolve = |cli: Cli| Config::resolve(&cli, &Default::default()).unwrap().console;
    let base = || Cli {
        token: Some("t".into()),
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..Cli::default()
    };
    assert!(resolve(base()).enabled);
    let open = Cli {
        listen: Some("0.0.0.0:0".into()),
        ..base()
    };
    let off = resolve(open);
    assert!(!off.enabled);
    assert!(off.why.contains("--console on"), "{}", off.why);
    let open_on = Cli {
        listen: Some("0.0.0.0:0".into()),
        console: Some("on".into()),
        ..base()
    };
    assert!(resolve(open_on).enabled);
    let bad = Cli {
        console: Some("maybe".into()),
        ..base()
    };
    let err = Config::resolve(&bad, &Default::default()).unwrap_err();
    assert!(err.contains("console"), "{err}");
    // [console] enabled in the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:0\"\n[console]\nenabled = true\n").unwrap();
    let from_file = Cli {
        config: Some(file),
        ..base()
    };
    assert_eq!(resolve(from_file).why, "[console] enabled");
}
