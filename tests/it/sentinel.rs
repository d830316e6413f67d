//! restdis in front of a real Sentinel group (a primary, a replica, three sentinels on free
//! loopback ports, [`TestSentinel`]): commands reach the primary; `SENTINEL FAILOVER` and a
//! primary killed with SIGKILL under load give only JSON 503/504 errors, acknowledged <= final
//! <= sent, and full service afterwards. Timings are printed, never asserted.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::failover_under_load;
use crate::harness::{cli_for_url, wait_for, Gateway, TestSentinel};

async fn gateway(group: &TestSentinel) -> Gateway {
    let mut cli = cli_for_url(group.url());
    cli.command_timeout = Some("3s".into());
    Gateway::start_with(cli).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_primary_sentinel_names() {
    let group = TestSentinel::start();
    let gw = gateway(&group).await;
    assert_eq!(
        gw.cmd(json!(["SET", "k", "v"])).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(group.data[0].text(&["GET", "k"]), "v");
    assert_eq!(
        gw.pipeline(json!([["INCR", "n"], ["INCR", "n"]])).await.1,
        json!([{"result": 1}, {"result": 2}])
    );
    assert_eq!(
        gw.multi(json!([["INCR", "n"], ["GET", "n"]])).await.1[1],
        json!({"result": "3"})
    );
    let backend = gw.backend();
    let sentinel = backend.sentinel().expect("a sentinel backend");
    assert_eq!(sentinel.primary(), Some(group.data[0].addr()));
    // --check-config names the mode and the primary; a bad URL: one line, exit 2.
    let out = crate::harness::check_config(&group.url());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "sentinel mode, master mymaster is {}",
            group.data[0].addr()
        )),
        "{text}"
    );
    let out = crate::harness::check_config("redis+sentinel://127.0.0.1:1");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MASTER_NAME"));
    gw.shutdown().await;
}

/// Waits for the sentinels to name a primary other than `old`; the moment they did.
fn wait_switch(group: &TestSentinel, old: u16) -> Instant {
    wait_for(Duration::from_secs(30), "+switch-master", || {
        group.primary_port().is_some_and(|p| p != old)
    });
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load() {
    let group = std::sync::Arc::new(TestSentinel::start());
    let gw = gateway(&group).await;
    let g = group.clone();
    let (errors, after) = failover_under_load(&gw, move || {
        let old = g.primary_port().unwrap();
        assert_eq!(g.sentinels[0].text(&["SENTINEL", "FAILOVER", "mymaster"]), "OK");
        wait_switch(&g, old)
    })
    .await;
    let new = group.primary_port().unwrap();
    assert_eq!(
        gw.backend().sentinel().unwrap().primary(),
        Some(format!("127.0.0.1:{new}"))
    );
    println!("SENTINEL FAILOVER: {errors} errors, last {after:?} after +switch-master");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_under_sentinel_recovers() {
    let group = std::sync::Arc::new(TestSentinel::start());
    let gw = gateway(&group).await;
    let g = group.clone();
    let (errors, after) = failover_under_load(&gw, move || {
        let old = g.primary_port().unwrap();
        g.data.iter().find(|n| n.port == old).unwrap().crash();
        wait_switch(&g, old)
    })
    .await;
    println!("killed primary under Sentinel: {errors} errors, last {after:?} after +switch-master");
    gw.shutdown().await;
}
