//! Quota alerts: a warning log line, a counter, and, when `[alerts] webhook_url` is set, a
//! signed `POST` of the alert as JSON. Delivery runs in a task of its own (5 s timeout per
//! attempt, 3 attempts, 1 s then 2 s apart), so a slow or failing receiver never slows a
//! request. The signature is `X-Restdis-Signature: sha256=<hex HMAC-SHA256 of the raw body>`
//! with `[alerts] webhook_secret` as the key (docs/monitoring.md shows how to check it).

use std::time::Duration;

use hmac::{Hmac, Mac};
use prometheus::IntCounter;
use serde::Serialize;
use sha2::Sha256;

/// Attempts per alert.
const ATTEMPTS: u32 = 3;
/// Time one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One threshold crossing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// The tenant.
    pub tenant: String,
    /// `daily_commands`, `monthly_commands`, `daily_bandwidth` or `monthly_bandwidth`.
    pub quota: &'static str,
    /// The limit.
    pub limit: u64,
    /// Usage when the crossing was seen.
    pub usage: u64,
    /// The threshold crossed (a fraction of the limit).
    pub threshold: f64,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// When the period ends (RFC 3339, UTC).
    pub resets_at: String,
    /// When restdis saw the crossing (RFC 3339, UTC).
    pub fired_at: String,
}

/// Where alerts are delivered.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    secret: Option<String>,
    client: reqwest::Client,
    ok: IntCounter,
    failed: IntCounter,
}

impl Webhook {
    /// A webhook to `url`, signed with `secret` when there is one; `ok`/`failed` count
    /// deliveries.
    pub fn new(
        url: String,
        secret: Option<String>,
        ok: IntCounter,
        failed: IntCounter,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("alerts.webhook_url: cannot build an HTTP client: {e}"))?;
        Ok(Self {
            url,
            secret,
            client,
            ok,
            failed,
        })
    }

    /// Sends `alert` in the background.
    pub fn send(&self, alert: &Alert) {
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(_) => return,
        };
        let signature = self.secret.as_deref().map(|s| sign(s.as_bytes(), &body));
        let hook = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            for attempt in 1..=ATTEMPTS {
                let mut req = hook
                    .client
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(sig) = &signature {
                    req = req.header("x-restdis-signature", sig.as_str());
                }
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        hook.ok.inc();
                        return;
                    }
                    Ok(resp) => {
                        tracing::warn!(attempt, status = %resp.status(), "quota alert webhook refused the alert")
                    }
                    Err(e) => tracing::warn!(attempt, error = %e, "quota alert webhook failed"),
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            hook.failed.inc();
        });
    }
}

/// `sha256=<hex HMAC-SHA256(key, body)>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
