//! The monitoring kit in `deploy/monitoring/` matches what restdis exports: every metric name
//! in an alert rule's expression or a Grafana panel's query appears in `/metrics` after a
//! mixed load (two tenants, one of which crosses its quota and fires alerts to a webhook
//! receiver, single commands, a pipeline, errors, an open stream). Every rule has `expr`,
//! `for` and a `severity` label; every dashboard panel has queries.
//!
//! A labelled metric with no series yet is absent from the exposition (the `prometheus` crate
//! prints neither HELP nor TYPE for it), so the load must create every referenced series, or
//! restdis must create the ones whose label values are known at start (as it does for each
//! route × status), which also lets `rate()` and `increase()` see their first increment.
//! PromQL syntax is checked separately, by promtool (`scripts/check-monitoring`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{status_json, Gateway, TestRedis};
use crate::streams::Sse;

const ACME: &str = "tok-acme";
const GLOBEX: &str = "tok-globex";
/// Tenant acme's daily command quota: the load sends more, so the 80 % and 100 % alerts fire
/// and later commands are rejected.
const ACME_DAILY_COMMANDS: usize = 10;

fn kit(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/monitoring")
        .join(file)
}

/// One alerting (or recording) rule of a Prometheus rules file.
#[derive(Debug, Default)]
struct Rule {
    name: String,
    expr: String,
    for_: Option<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The rules of `deploy/monitoring/restdis-rules.yml`. Not a general YAML parser: it reads the
/// block style that file is written in (one `- alert:` item per rule, `expr` inline or as a `|`
/// or `>` block, `labels` and `annotations` as maps one level deep).
fn parse_rules(yaml: &str) -> Vec<Rule> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(item) = trimmed.strip_prefix("- ") else {
            i += 1;
            continue;
        };
        let Some(name) = item
            .strip_prefix("alert:")
            .or_else(|| item.strip_prefix("record:"))
        else {
            i += 1;
            continue;
        };
        // The rule's keys are indented like the text after "- ".
        let key_indent = indent(lines[i]) + 2;
        let mut rule = Rule {
            name: name.trim().to_owned(),
            ..Rule::default()
        };
        i += 1;
        while i < lines.len() {
            let line = lines[i];
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                i += 1;
                continue;
            }
            if indent(line) < key_indent || (indent(line) == key_indent && t.starts_with("- ")) {
                break;
            }
            let (key, value) = t.split_once(':').unwrap_or((t, ""));
            let value = value.trim();
            i += 1;
            // The lines nested under this key.
            let start = i;
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > key_indent) {
                i += 1;
            }
            let nested = &lines[start..i];
            match key {
                "expr" if value.starts_with('|') || value.starts_with('>') => {
                    rule.expr = nested.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n");
                }
                "expr" => rule.expr = value.to_owned(),
                "for" => rule.for_ = Some(value.to_owned()),
                "labels" => rule.labels = map_entries(nested),
                "annotations" => rule.annotations = map_entries(nested),
                _ => {}
            }
        }
        rules.push(rule);
    }
    rules
}

/// `key: value` entries of a nested map (a block value counts as non-empty).
fn map_entries(nested: &[&str]) -> Vec<(String, String)> {
    let Some(first) = nested.iter().find(|l| !l.trim().is_empty()) else {
        return Vec::new();
    };
    let child = indent(first);
    nested
        .iter()
        .filter(|l| !l.trim().is_empty() && indent(l) == child)
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// Every `restdis_…` metric name in a PromQL expression (not inside a longer identifier).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = expr[from..].find("restdis_").map(|p| p + from) {
        let end = at
            + expr[at..]
                .bytes()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
                .count();
        if at == 0 || !ident(b[at - 1]) {
            names.insert(expr[at..end].to_owned());
        }
        from = end;
    }
    names
}

/// Every panel of a dashboard, those inside rows included.
fn panels(list: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(&p["panels"]));
    }
    out
}

/// The names the exposition knows: `# TYPE` lines and series names (a histogram's series are
/// its `_bucket`, `_sum` and `_count`, which is what PromQL refers to).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_rule_has_an_expression_a_duration_a_severity_and_a_summary() {
    let yaml = std::fs::read_to_string(kit("restdis-rules.yml")).unwrap();
    let rules = parse_rules(&yaml);
    assert!(rules.len() >= 9, "only {} rules found", rules.len());
    for r in &rules {
        assert!(!r.expr.trim().is_empty(), "{}: no expr", r.name);
        assert!(
            !metric_names(&r.expr).is_empty() || r.expr.contains("up{"),
            "{}: {}",
            r.name,
            r.expr
        );
        assert!(
            r.for_.as_deref().is_some_and(|f| !f.is_empty()),
            "{}: no `for`",
            r.name
        );
        let label = |k: &str| r.labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert!(
            matches!(label("severity"), Some("critical" | "warning" | "info")),
            "{}: severity {:?}",
            r.name,
            label("severity")
        );
        for key in ["summary", "description"] {
            assert!(
                r.annotations.iter().any(|(n, v)| n == key && !v.is_empty()),
                "{}: no {key} annotation",
                r.name
            );
        }
    }
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    for alert in [
        "RestdisDown",
        "RestdisBackendDown",
        "RestdisHighErrorRatio",
        "RestdisHighLatencyP99",
        "RestdisQuota80",
        "RestdisQuotaExhausted",
        "RestdisStreamsNearCap",
        "RestdisRedisSlow",
        "RestdisUsageNotPersisted",
    ] {
        assert!(names.contains(alert), "{alert} is missing from restdis-rules.yml");
    }
}

#[test]
fn every_dashboard_panel_has_queries_and_the_variables_exist() {
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(kit("grafana-dashboard.json")).unwrap()).unwrap();
    let all = panels(&dash["panels"]);
    assert!(all.len() > 10, "only {} panels", all.len());
    let mut ids = BTreeSet::new();
    for p in all {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!targets.is_empty(), "panel {:?} has no targets", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(
                !metric_names(expr).is_empty(),
                "panel {:?}: query {expr:?}",
                p["title"]
            );
        }
    }
    let vars: Vec<&Value> = dash["templating"]["list"].as_array().unwrap().iter().collect();
    let tenant = vars
        .iter()
        .find(|v| v["name"] == "tenant")
        .expect("a tenant variable");
    assert_eq!(
        tenant["definition"],
        "label_values(restdis_tenant_requests_total, tenant)"
    );
    assert!(vars
        .iter()
        .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"));
}

/// Every metric name the rules and the dashboard use, with where it is used.
fn referenced_names() -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(kit("restdis-rules.yml")).unwrap();
    let mut out = Vec::new();
    for r in parse_rules(&yaml) {
        out.extend(
            metric_names(&r.expr)
                .into_iter()
                .map(|n| (n, format!("rule {}", r.name))),
        );
    }
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(kit("grafana-dashboard.json")).unwrap()).unwrap();
    for p in panels(&dash["panels"]) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            out.extend(
                metric_names(expr)
                    .into_iter()
                    .map(|n| (n, format!("panel {}", p["title"]))),
            );
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["definition"].as_str().unwrap_or_default();
        out.extend(
            metric_names(q)
                .into_iter()
                .map(|n| (n, format!("variable {}", v["name"]))),
        );
    }
    out
}

/// Two tenants, each on a Redis of its own; acme with a daily command quota whose alerts go to
/// `webhook`.
fn two_tenants(
    dir: &tempfile::TempDir,
    acme: &TestRedis,
    globex: &TestRedis,
    webhook: &str,
) -> restdis::cli::Cli {
    let file = dir.path().join("tenants.toml");
    let toml = format!(
        "[alerts]\nwebhook_url = \"{webhook}\"\nwebhook_secret = \"monitoring-test-secret\"\n\n\
         [tenants.acme]\ntokens = [\"{ACME}\"]\nredis_url = \"{}\"\n\n\
         [tenants.acme.quota]\ndaily_commands = {ACME_DAILY_COMMANDS}\n\n\
         [tenants.globex]\ntokens = [\"{GLOBEX}\"]\nredis_url = \"{}\"\n",
        acme.url(),
        globex.url()
    );
    std::fs::write(&file, toml).unwrap();
    restdis::cli::Cli {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        config: Some(file),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let referenced = referenced_names();
    assert!(referenced.len() > 20, "{referenced:?}");
    let acme_redis = TestRedis::start();
    let globex_redis = TestRedis::start();
    let (webhook, _alerts) = crate::harness::webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = two_tenants(&dir, &acme_redis, &globex_redis, &webhook);
    if let Err(e) = restdis::config::Config::resolve(&cli, &Default::default()) {
        panic!("this test's [alerts] and quota keys must follow docs/configuration.md: {e}");
    }
    let gw = Gateway::start_with(cli).await;

    // globex: single commands (JSON and path form), a pipeline with a failing entry, a Redis
    // error, a malformed body, and an open stream while /metrics is read.
    assert_eq!(gw.post_as(GLOBEX, "/", json!(["SET", "k", "v"])).await.0, 200);
    assert_eq!(
        gw.post_as(GLOBEX, "/", json!(["GET", "k"])).await,
        (200, json!({"result": "v"}))
    );
    let resp = gw
        .http
        .get(format!("{}/get/k", gw.url))
        .bearer_auth(GLOBEX)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (200, json!({"result": "v"})));
    let (status, body) = gw
        .post_as(
            GLOBEX,
            "/pipeline",
            json!([["INCR", "n"], ["SET", "x", "1"], ["HGET", "k", "f"]]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gw.post_as(GLOBEX, "/", json!(["HGET", "k", "f"])).await.0, 400);
    let resp = gw
        .http
        .post(format!("{}/", gw.url))
        .bearer_auth(GLOBEX)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = gw
        .post_as(GLOBEX, "/multi-exec", json!([["INCR", "n"], ["GET", "n"]]))
        .await;
    assert_eq!(status, 200);
    let mut stream = Sse::open(&gw, "/subscribe/news", GLOBEX).await;
    assert_eq!(stream.next().await, "subscribe,news,1");

    // acme: past its daily command quota, so the 80 % and 100 % alerts fire (and are delivered
    // to the receiver) and the last commands are rejected.
    let mut rejected = 0;
    for _ in 0..ACME_DAILY_COMMANDS + 3 {
        let (status, _) = gw.post_as(ACME, "/", json!(["INCR", "calls"])).await;
        if status == 429 {
            rejected += 1;
        }
    }
    assert!(rejected > 0, "acme was never rejected past its quota");

    // Alerts and webhook deliveries happen in the background: poll until every name is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let missing = loop {
        let text = gw.metrics_text().await;
        let exported = exported_names(&text);
        let missing: BTreeSet<&(String, String)> =
            referenced.iter().filter(|(n, _)| !exported.contains(n)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let names: BTreeSet<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        missing.is_empty(),
        "{} metric names used by deploy/monitoring/ are not in /metrics: {names:?}\nused in: {missing:?}",
        names.len()
    );
    drop(stream);
    gw.shutdown().await;
}

#[test]
fn metric_names_are_found_whole() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(restdis_http_request_duration_seconds_bucket[5m]))) \
         / my_restdis_other + restdis_streams_open > 0.9 * 4096 and job:restdis_x:rate5m",
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "restdis_http_request_duration_seconds_bucket",
            "restdis_streams_open"
        ]
    );
}
