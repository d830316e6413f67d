//! Metering and quotas per tenant: what each tenant used (HTTP requests, Redis commands, bytes
//! in and out), its caps (daily and monthly commands and bandwidth, requests per second), and
//! alerts when usage crosses a threshold of a cap.
//!
//! - On the request path, a [`Meter`] (one per tenant) admits a request before anything of it
//!   reaches Redis, with atomics only (no lock shared across requests): a request whose
//!   commands or bytes would pass a cap is refused whole with a 429.
//! - Once a second, [`Metering::flush`] adds what this instance counted to the usage kept in
//!   Redis (`HINCRBY` on one hash per tenant and period, in a database no tenant may use) and
//!   reads back the totals, which include what other instances in front of the same Redis
//!   counted. The same pass updates the quota gauges and fires alerts.
//! - [`quota`] is the pure arithmetic; [`alerts`] the webhook.

pub mod alerts;
pub mod quota;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use serde_json::json;

use crate::backend::Backend;
use crate::metrics::TenantMetrics;
use crate::protocol::Command;
use alerts::{Alert, Webhook};
use quota::{Kind, Limits, Period, RateLimiter};

/// How often usage is written to Redis and read back.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The time, with an offset tests can move (day and month roll-over).
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// Now, plus the offset.
    pub fn now(&self) -> SystemTime {
        let offset = self.offset_secs.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        }
    }

    /// Moves the clock forward (tests).
    pub fn advance(&self, by: Duration) {
        self.offset_secs.fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error text (Upstash's words).
    pub message: String,
    /// Seconds until a retry can succeed.
    pub retry_after: u64,
    /// The metrics label: a quota name or `rate`.
    pub reason: &'static str,
}

/// A count per period: what the store said at the last flush, and what this instance added
/// since.
#[derive(Debug, Default)]
struct Window {
    index: AtomicU64,
    /// `[commands, bytes]` as read from the store (every instance's, ours included).
    base: [AtomicU64; 2],
    /// `[commands, bytes]` counted here since the last flush.
    pending: [AtomicU64; 2],
}

/// What a window held when its period ended, still to be written.
#[derive(Debug, Clone, Copy)]
struct Closed {
    period: Period,
    commands: u64,
    bytes: u64,
}

impl Window {
    fn usage(&self, dim: usize) -> u64 {
        self.base[dim].load(Ordering::Acquire) + self.pending[dim].load(Ordering::Acquire)
    }

    /// Adds `n` unless that passes `limit`; the usage before, as the error.
    fn try_add(&self, dim: usize, n: u64, limit: Option<u64>) -> Result<(), u64> {
        let pending = &self.pending[dim];
        let mut cur = pending.load(Ordering::Acquire);
        loop {
            let usage = self.base[dim].load(Ordering::Acquire) + cur;
            if limit.is_some_and(|l| usage + n > l) {
                return Err(usage);
            }
            match pending.compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// A tenant's caps: swapped whole when a configuration reload changes them, so a request
/// sees either the old caps or the new ones.
struct Caps {
    limits: Limits,
    thresholds: Vec<f64>,
    rate: Option<RateLimiter>,
}

impl Caps {
    fn new(limits: Limits, thresholds: Vec<f64>) -> Self {
        let rate = limits
            .requests_per_second
            .map(|r| RateLimiter::new(r, limits.burst.unwrap_or(r)));
        Self {
            limits,
            thresholds,
            rate,
        }
    }
}

/// One tenant's counts, caps and alert state.
pub struct Meter {
    tenant: String,
    caps: ArcSwap<Caps>,
    day: Window,
    month: Window,
    /// Periods that ended with counts not yet written (touched at roll-over and flush only).
    closed: Mutex<Vec<Closed>>,
    /// (quota, period index, threshold in thousandths) already alerted (flush only).
    fired: Mutex<HashSet<(Kind, u64, u64)>>,
    metrics: TenantMetrics,
    /// Its streams open now (the per-tenant stream cap, and the gauge).
    pub open_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// Seconds since the epoch when the current day ends: until then [`roll`](Self::roll)
    /// is one comparison.
    day_ends: AtomicU64,
}

impl Meter {
    /// A meter for `tenant` with these caps.
    pub fn new(
        tenant: &str,
        limits: Limits,
        thresholds: Vec<f64>,
        metrics: TenantMetrics,
        now: SystemTime,
    ) -> Self {
        for kind in Kind::ALL {
            if let Some(l) = limits.of(kind) {
                metrics.limit(kind).set(l as i64);
            }
        }
        let meter = Self {
            tenant: tenant.to_string(),
            caps: ArcSwap::from_pointee(Caps::new(limits, thresholds)),
            day: Window::default(),
            month: Window::default(),
            closed: Mutex::new(Vec::new()),
            fired: Mutex::new(HashSet::new()),
            metrics,
            open_streams: Default::default(),
            day_ends: AtomicU64::new(0),
        };
        meter
            .day
            .index
            .store(Period::of(true, now).index, Ordering::Release);
        meter
            .month
            .index
            .store(Period::of(false, now).index, Ordering::Release);
        meter
    }

    /// Applies caps from a reloaded configuration, from the next request on; counts are kept.
    /// The rate limiter starts afresh only when the rate or burst changed. Returns whether
    /// anything changed.
    pub fn set_caps(&self, limits: Limits, thresholds: Vec<f64>) -> bool {
        let old = self.caps.load();
        if old.limits == limits && old.thresholds == thresholds {
            return false;
        }
        let mut caps = Caps::new(limits, thresholds);
        if old.limits.requests_per_second == limits.requests_per_second && old.limits.burst == limits.burst {
            caps.rate = old.rate.as_ref().map(RateLimiter::clone_state);
        }
        for kind in Kind::ALL {
            if let Some(l) = limits.of(kind) {
                self.metrics.limit(kind).set(l as i64);
            }
        }
        self.caps.store(Arc::new(caps));
        true
    }

    /// The tenant's limits now.
    pub fn limits(&self) -> Limits {
        self.caps.load().limits
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The per-tenant metrics.
    pub fn metrics(&self) -> &TenantMetrics {
        &self.metrics
    }

    fn window(&self, daily: bool) -> &Window {
        if daily {
            &self.day
        } else {
            &self.month
        }
    }

    /// Starts new periods when `now` is past the current ones.
    fn roll(&self, now: SystemTime) {
        let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if secs < self.day_ends.load(Ordering::Relaxed) {
            return;
        }
        // A new day (a month changes only with a day), or the first call.
        self.day_ends
            .store(Period::of(true, now).resets_at(), Ordering::Relaxed);
        for daily in [true, false] {
            let period = Period::of(daily, now);
            let window = self.window(daily);
            let old = window.index.load(Ordering::Acquire);
            if old == period.index {
                continue;
            }
            let Ok(mut closed) = self.closed.lock() else {
                continue;
            };
            if window
                .index
                .compare_exchange(old, period.index, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            closed.push(Closed {
                period: Period { daily, index: old },
                commands: window.pending[0].swap(0, Ordering::AcqRel),
                bytes: window.pending[1].swap(0, Ordering::AcqRel),
            });
            window.base[0].store(0, Ordering::Release);
            window.base[1].store(0, Ordering::Release);
        }
    }

    /// Admits a request of `commands` Redis commands and `bytes_in` body bytes, or says why
    /// not. Nothing of a refused request is counted as used.
    pub fn admit(&self, now: SystemTime, commands: u64, bytes_in: u64) -> Result<(), Refusal> {
        let refused = |kind: Kind, limit: u64, usage: u64| {
            self.metrics.rejected(kind.name()).inc();
            Refusal {
                message: kind.refusal(limit, usage),
                retry_after: Period::of(kind.daily(), now).retry_after(now),
                reason: kind.name(),
            }
        };
        let caps = self.caps.load();
        if let Some(rate) = &caps.rate {
            if let Err(wait) = rate.admit(now) {
                self.metrics.rejected("rate").inc();
                return Err(Refusal {
                    message: rate.refusal(),
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                    reason: "rate",
                });
            }
        }
        self.roll(now);
        let wanted = [commands, bytes_in];
        // Kind::ALL in order; on a refusal, what the earlier kinds took is given back.
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let dim = usize::from(!kind.commands());
            if let Err(usage) = self
                .window(kind.daily())
                .try_add(dim, wanted[dim], caps.limits.of(kind))
            {
                for earlier in &Kind::ALL[..i] {
                    let d = usize::from(!earlier.commands());
                    self.window(earlier.daily()).pending[d].fetch_sub(wanted[d], Ordering::AcqRel);
                }
                return Err(refused(kind, caps.limits.of(kind).unwrap_or(0), usage));
            }
        }
        self.metrics.commands.inc_by(commands);
        self.metrics.bytes_received.inc_by(bytes_in);
        Ok(())
    }

    /// Counts the response of an admitted request (bytes out; never refused, so a cap can be
    /// passed by one response).
    pub fn sent(&self, bytes_out: u64) {
        self.metrics.bytes_sent.inc_by(bytes_out);
        self.day.pending[1].fetch_add(bytes_out, Ordering::AcqRel);
        self.month.pending[1].fetch_add(bytes_out, Ordering::AcqRel);
    }

    /// Usage of one quota now.
    pub fn usage(&self, kind: Kind) -> u64 {
        self.window(kind.daily()).usage(usize::from(!kind.commands()))
    }

    /// The `/usage` entry of this tenant.
    pub fn report(&self, now: SystemTime) -> serde_json::Value {
        self.roll(now);
        let caps = self.caps.load();
        let period = |daily: bool| {
            let p = Period::of(daily, now);
            let w = self.window(daily);
            json!({
                "period": p.label(),
                "resets_at": quota::rfc3339(p.resets_at()),
                "commands": w.usage(0),
                "bandwidth": w.usage(1),
            })
        };
        let limits: serde_json::Map<String, serde_json::Value> = Kind::ALL
            .iter()
            .map(|k| (k.name().to_string(), json!(caps.limits.of(*k))))
            .chain([
                (
                    "requests_per_second".to_string(),
                    json!(caps.limits.requests_per_second),
                ),
                (
                    "burst".to_string(),
                    json!(caps
                        .rate
                        .as_ref()
                        .map(|_| caps.limits.burst.or(caps.limits.requests_per_second))),
                ),
            ])
            .collect();
        let crossed: Vec<serde_json::Value> = Kind::ALL
            .iter()
            .filter_map(|k| Some((*k, caps.limits.of(*k)?)))
            .flat_map(|(k, limit)| {
                let usage = self.usage(k);
                caps.thresholds
                    .iter()
                    .filter(move |t| limit > 0 && usage as f64 >= **t * limit as f64)
                    .map(move |t| json!({"quota": k.name(), "threshold": t}))
            })
            .collect();
        json!({
            "tenant": self.tenant,
            "day": period(true),
            "month": period(false),
            "limits": limits,
            "thresholds": caps.thresholds,
            "thresholds_crossed": crossed,
        })
    }

    /// Updates the ratio gauges and returns the alerts due (each once per period and
    /// threshold, in this instance; the store de-duplicates across instances).
    fn due_alerts(&self, now: SystemTime) -> Vec<(Alert, u64)> {
        let mut due = Vec::new();
        let Ok(mut fired) = self.fired.lock() else {
            return due;
        };
        let caps = self.caps.load();
        for kind in Kind::ALL {
            let Some(limit) = caps.limits.of(kind) else {
                continue;
            };
            let usage = self.usage(kind);
            let ratio = usage as f64 / limit.max(1) as f64;
            self.metrics.ratio(kind).set(ratio);
            let period = Period::of(kind.daily(), now);
            for t in &caps.thresholds {
                let key = (kind, period.index, (t * 1000.0).round() as u64);
                if ratio + 1e-9 < *t || fired.contains(&key) {
                    continue;
                }
                fired.insert(key);
                due.push((
                    Alert {
                        tenant: self.tenant.clone(),
                        quota: kind.name(),
                        limit,
                        usage,
                        threshold: *t,
                        period: period.label(),
                        resets_at: quota::rfc3339(period.resets_at()),
                        fired_at: quota::rfc3339(
                            now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                        ),
                    },
                    period.retry_after(now),
                ));
            }
        }
        fired.retain(|(kind, index, _)| *index == Period::of(kind.daily(), now).index);
        due
    }
}

/// Every tenant's meter, the usage store and the alert channel.
pub struct Metering {
    /// Every configured tenant's meter (swapped whole by a configuration reload).
    meters: ArcSwap<Vec<Arc<Meter>>>,
    /// Meters of tenants a reload removed: their last counts are written by the next flush.
    retired: Mutex<Vec<Arc<Meter>>>,
    /// Where usage is kept (`None`: in memory only).
    store: Option<Arc<Backend>>,
    webhook: Option<Webhook>,
    /// The time meters see.
    pub clock: Arc<Clock>,
    alerts_fired: prometheus::IntCounterVec,
    flush_errors: prometheus::IntCounter,
}

/// Key of a tenant's usage hash in the store.
fn usage_key(tenant: &str, period: Period) -> String {
    let kind = if period.daily { "d" } else { "m" };
    format!("restdis:usage:{tenant}:{kind}:{}", period.label())
}

/// How long a period's hash is kept after it was last written (a few periods, for `/usage`
/// history and late flushes).
fn usage_ttl(period: Period) -> u64 {
    if period.daily {
        3 * 86_400
    } else {
        70 * 86_400
    }
}

impl Metering {
    /// Metering of these meters; usage kept in `store` when there is one.
    pub fn new(
        meters: Vec<Arc<Meter>>,
        store: Option<Arc<Backend>>,
        webhook: Option<Webhook>,
        clock: Arc<Clock>,
        alerts_fired: prometheus::IntCounterVec,
        flush_errors: prometheus::IntCounter,
    ) -> Self {
        Self {
            meters: ArcSwap::from_pointee(meters),
            retired: Mutex::new(Vec::new()),
            store,
            webhook,
            clock,
            alerts_fired,
            flush_errors,
        }
    }

    /// The meters, in configuration order.
    pub fn meters(&self) -> Arc<Vec<Arc<Meter>>> {
        self.meters.load_full()
    }

    /// The meter of tenant `name`, if it has one.
    pub fn meter(&self, name: &str) -> Option<Arc<Meter>> {
        self.meters.load().iter().find(|m| m.tenant == name).cloned()
    }

    /// Replaces the meters after a configuration reload. Meters that are no longer listed
    /// get one last flush of what they counted.
    pub fn set_meters(&self, meters: Vec<Arc<Meter>>) {
        let old = self.meters.swap(Arc::new(meters));
        let now = self.meters.load();
        let gone = old.iter().filter(|m| !now.iter().any(|n| Arc::ptr_eq(m, n)));
        if let Ok(mut retired) = self.retired.lock() {
            retired.extend(gone.cloned());
        }
    }

    /// Whether usage is kept in Redis.
    pub fn persisted(&self) -> bool {
        self.store.is_some()
    }

    /// The `/usage` document.
    pub fn report(&self) -> serde_json::Value {
        let now = self.clock.now();
        json!({
            "persisted": self.persisted(),
            "generated_at": quota::rfc3339(now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)),
            "tenants": self.meters.load().iter().map(|m| m.report(now)).collect::<Vec<_>>(),
        })
    }

    /// Reads the usage kept in Redis (after a restart, or another instance's) before the
    /// first request; waits at most a few seconds for the store.
    pub async fn load(&self) {
        if let Some(store) = &self.store {
            if store.wait_connected(Duration::from_secs(3)).await {
                self.flush().await;
            } else {
                tracing::warn!("the Redis that keeps usage is not reachable yet; usage starts from this instance's counts");
            }
        }
    }

    /// Sets the gauges read at scrape time.
    pub fn refresh_gauges(&self) {
        for m in self.meters.load().iter() {
            m.metrics
                .streams_open
                .set(m.open_streams.load(Ordering::Relaxed) as i64);
        }
    }

    /// Runs until `shutdown`: a flush every [`FLUSH_INTERVAL`], and a last one at the end.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_INTERVAL) => self.flush().await,
                _ = shutdown.changed() => {
                    self.flush().await;
                    return;
                }
            }
        }
    }

    /// Writes what this instance counted since the last flush, reads back every instance's
    /// totals, updates the gauges and fires the alerts due.
    pub async fn flush(&self) {
        let now = self.clock.now();
        let retired = self
            .retired
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        let current = self.meters.load_full();
        let meters: Vec<&Arc<Meter>> = current.iter().chain(&retired).collect();
        if let Some(store) = &self.store {
            self.persist(store, now, &meters).await;
        }
        for meter in current.iter() {
            meter.roll(now);
            for (alert, ttl) in meter.due_alerts(now) {
                if self.first_to_fire(&alert, ttl).await {
                    self.fire(&alert);
                }
            }
        }
    }

    async fn persist(&self, store: &Backend, now: SystemTime, meters: &[&Arc<Meter>]) {
        // Per meter: its current windows' pending counts (taken now) and closed periods.
        struct Batch<'a> {
            meter: &'a Meter,
            current: Vec<(Period, [u64; 2])>,
            closed: Vec<Closed>,
        }
        let mut batches = Vec::with_capacity(meters.len());
        let mut cmds = Vec::new();
        for meter in meters {
            meter.roll(now);
            let closed = meter
                .closed
                .lock()
                .map(|mut c| std::mem::take(&mut *c))
                .unwrap_or_default();
            let mut current = Vec::with_capacity(2);
            for daily in [true, false] {
                let w = meter.window(daily);
                let period = Period {
                    daily,
                    index: w.index.load(Ordering::Acquire),
                };
                let taken = [
                    w.pending[0].swap(0, Ordering::AcqRel),
                    w.pending[1].swap(0, Ordering::AcqRel),
                ];
                current.push((period, taken));
            }
            for c in &closed {
                push_incr(&mut cmds, &meter.tenant, c.period, [c.commands, c.bytes]);
            }
            for (period, taken) in &current {
                push_incr(&mut cmds, &meter.tenant, *period, *taken);
            }
            batches.push(Batch {
                meter,
                current,
                closed,
            });
        }
        let replies = match store.pipeline(&cmds).await {
            Ok(r) if r.iter().all(|v| !matches!(v, Value::ServerError(_))) => r,
            outcome => {
                match &outcome {
                    Err(e) => tracing::warn!(error = %e, "cannot write usage to Redis; retrying in a second"),
                    Ok(replies) => {
                        let first = replies.iter().find_map(|v| match v {
                            Value::ServerError(e) => Some(crate::protocol::encode::error_text(e)),
                            _ => None,
                        });
                        tracing::warn!(error = ?first, "Redis refused a usage update; retrying in a second")
                    }
                }
                self.flush_errors.inc();
                // Nothing is lost: the counts go back to be written next time. (A failed
                // pipeline may have been applied in part; Redis gives no way to know.)
                for b in batches {
                    if let Ok(mut c) = b.meter.closed.lock() {
                        c.extend(b.closed);
                    }
                    for (period, taken) in b.current {
                        let w = b.meter.window(period.daily);
                        w.pending[0].fetch_add(taken[0], Ordering::AcqRel);
                        w.pending[1].fetch_add(taken[1], Ordering::AcqRel);
                    }
                }
                return;
            }
        };
        // Each period took 3 commands (HINCRBY commands, HINCRBY bytes, EXPIRE).
        let mut at = 0;
        for b in batches {
            at += 3 * b.closed.len();
            for (period, _) in b.current {
                let totals = [int(&replies, at), int(&replies, at + 1)];
                at += 3;
                let w = b.meter.window(period.daily);
                if w.index.load(Ordering::Acquire) == period.index {
                    w.base[0].store(totals[0], Ordering::Release);
                    w.base[1].store(totals[1], Ordering::Release);
                }
            }
        }
    }

    /// Whether this instance is the first to fire `alert` (the store keeps one marker per
    /// alert and period); without a store, always.
    async fn first_to_fire(&self, alert: &Alert, ttl: u64) -> bool {
        let Some(store) = &self.store else { return true };
        let key = format!(
            "restdis:alert:{}:{}:{}:{}",
            alert.tenant, alert.quota, alert.period, alert.threshold
        );
        let cmd = Command::internal(&["SET", &key, "1", "NX", "EX", &ttl.max(1).to_string()]);
        match store.execute(&cmd).await {
            Ok(Value::Nil) => false,
            Ok(_) => true,
            // The store is down: better twice than never.
            Err(_) => true,
        }
    }

    fn fire(&self, alert: &Alert) {
        tracing::warn!(
            tenant = %alert.tenant,
            quota = alert.quota,
            limit = alert.limit,
            usage = alert.usage,
            threshold = alert.threshold,
            period = %alert.period,
            "quota threshold crossed"
        );
        self.alerts_fired
            .with_label_values(&[&alert.tenant, alert.quota, &alert.threshold.to_string()])
            .inc();
        if let Some(hook) = &self.webhook {
            hook.send(alert);
        }
    }
}

fn push_incr(cmds: &mut Vec<Command>, tenant: &str, period: Period, amounts: [u64; 2]) {
    let key = usage_key(tenant, period);
    cmds.push(Command::internal(&[
        "HINCRBY",
        &key,
        "commands",
        &amounts[0].to_string(),
    ]));
    cmds.push(Command::internal(&[
        "HINCRBY",
        &key,
        "bytes",
        &amounts[1].to_string(),
    ]));
    cmds.push(Command::internal(&[
        "EXPIRE",
        &key,
        &usage_ttl(period).to_string(),
    ]));
}

fn int(replies: &[Value], i: usize) -> u64 {
    match replies.get(i) {
        Some(Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(limits: Limits) -> Meter {
        Meter::new(
            "t",
            limits,
            vec![0.8, 1.0],
            TenantMetrics::unregistered().unwrap(),
            SystemTime::now(),
        )
    }

    #[test]
    fn caps_are_exact_and_refusals_cost_nothing() {
        let m = meter(Limits {
            daily_commands: Some(10),
            ..Default::default()
        });
        let now = SystemTime::now();
        assert!(m.admit(now, 7, 0).is_ok());
        let refusal = m.admit(now, 4, 0).unwrap_err();
        assert_eq!(
            refusal.message,
            "ERR max daily request limit exceeded. Limit: 10, Usage: 7"
        );
        assert_eq!(refusal.reason, "daily_commands");
        assert!(refusal.retry_after >= 1 && refusal.retry_after <= 86_400);
        assert!(m.admit(now, 3, 0).is_ok());
        assert!(m.admit(now, 1, 0).is_err());
        assert_eq!(m.usage(Kind::DailyCommands), 10);
    }

    #[test]
    fn a_monthly_refusal_undoes_the_daily_count() {
        let m = meter(Limits {
            daily_commands: Some(100),
            monthly_commands: Some(5),
            ..Default::default()
        });
        let now = SystemTime::now();
        assert!(m.admit(now, 5, 0).is_ok());
        let refusal = m.admit(now, 1, 0).unwrap_err();
        assert_eq!(refusal.reason, "monthly_commands");
        assert_eq!(m.usage(Kind::DailyCommands), 5);
    }

    #[test]
    fn a_new_day_starts_from_zero_and_alerts_once_per_period() {
        let m = meter(Limits {
            daily_commands: Some(10),
            ..Default::default()
        });
        let now = SystemTime::now();
        assert!(m.admit(now, 8, 0).is_ok());
        let due = m.due_alerts(now);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.threshold, 0.8);
        assert!(m.due_alerts(now).is_empty(), "not twice");
        assert!(m.admit(now, 2, 0).is_ok());
        assert_eq!(m.due_alerts(now)[0].0.threshold, 1.0);
        let tomorrow = now + Duration::from_secs(86_400);
        assert!(m.admit(tomorrow, 10, 0).is_ok());
        let due = m.due_alerts(tomorrow);
        assert_eq!(due.len(), 2, "a new period alerts again");
        // Yesterday's count waits to be written.
        let closed = m.closed.lock().unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].commands, 10);
    }

    #[test]
    fn bandwidth_counts_both_ways() {
        let m = meter(Limits {
            daily_bandwidth: Some(1000),
            ..Default::default()
        });
        let now = SystemTime::now();
        assert!(m.admit(now, 1, 100).is_ok());
        m.sent(900);
        let refusal = m.admit(now, 1, 1).unwrap_err();
        assert_eq!(
            refusal.message,
            "ERR max daily bandwidth limit exceeded. Limit: 1000, Usage: 1000"
        );
    }
}
