//! Quota arithmetic, pure: limits, UTC periods and when they reset, the refusal texts, the
//! rate limiter. No I/O, no clock of its own (callers pass `now`), so all of it is unit-tested
//! with any instant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The quotas a tenant may have, in the order they are checked and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Redis commands per UTC day.
    DailyCommands,
    /// Redis commands per calendar month (UTC).
    MonthlyCommands,
    /// Request plus response body bytes per UTC day.
    DailyBandwidth,
    /// Request plus response body bytes per calendar month.
    MonthlyBandwidth,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [
        Kind::DailyCommands,
        Kind::MonthlyCommands,
        Kind::DailyBandwidth,
        Kind::MonthlyBandwidth,
    ];

    /// The name used in config keys, metrics labels, `/usage` and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DailyCommands => "daily_commands",
            Kind::MonthlyCommands => "monthly_commands",
            Kind::DailyBandwidth => "daily_bandwidth",
            Kind::MonthlyBandwidth => "monthly_bandwidth",
        }
    }

    /// Whether it counts per day (else per month).
    pub fn daily(self) -> bool {
        matches!(self, Kind::DailyCommands | Kind::DailyBandwidth)
    }

    /// Whether it counts commands (else bytes).
    pub fn commands(self) -> bool {
        matches!(self, Kind::DailyCommands | Kind::MonthlyCommands)
    }

    /// The refusal text, in Upstash's words for commands (client code matches them), and in
    /// the same form for bandwidth.
    pub fn refusal(self, limit: u64, usage: u64) -> String {
        let what = match self {
            Kind::DailyCommands => "max daily request limit",
            Kind::MonthlyCommands => "max requests limit",
            Kind::DailyBandwidth => "max daily bandwidth limit",
            Kind::MonthlyBandwidth => "max monthly bandwidth limit",
        };
        format!("ERR {what} exceeded. Limit: {limit}, Usage: {usage}")
    }
}

/// A tenant's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Commands per UTC day.
    pub daily_commands: Option<u64>,
    /// Commands per calendar month.
    pub monthly_commands: Option<u64>,
    /// Bytes per UTC day.
    pub daily_bandwidth: Option<u64>,
    /// Bytes per calendar month.
    pub monthly_bandwidth: Option<u64>,
    /// Requests per second (token bucket refill rate).
    pub requests_per_second: Option<u64>,
    /// Token bucket size (default: `requests_per_second`).
    pub burst: Option<u64>,
}

impl Limits {
    /// The limit of one quota.
    pub fn of(&self, kind: Kind) -> Option<u64> {
        match kind {
            Kind::DailyCommands => self.daily_commands,
            Kind::MonthlyCommands => self.monthly_commands,
            Kind::DailyBandwidth => self.daily_bandwidth,
            Kind::MonthlyBandwidth => self.monthly_bandwidth,
        }
    }

    /// Whether any period quota (not the rate) is set.
    pub fn any_period(&self) -> bool {
        Kind::ALL.iter().any(|k| self.of(*k).is_some())
    }
}

/// Days since 1970-01-01 (UTC) of an instant.
pub fn day_index(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// (year, month 1-12, day 1-31) of a day index (Howard Hinnant's civil-from-days).
pub fn civil(day: u64) -> (i64, u32, u32) {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day index of a (year, month, day) (the inverse of [`civil`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468).max(0) as u64
}

/// A month index (months since 1970-01) of a day index.
pub fn month_index(day: u64) -> u64 {
    let (y, m, _) = civil(day);
    ((y - 1970) * 12 + i64::from(m) - 1).max(0) as u64
}

/// One period of a quota: a UTC day or a calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Whether it is a day (else a month).
    pub daily: bool,
    /// The day index, or the month index.
    pub index: u64,
}

impl Period {
    /// The period of `kind` that contains `now`.
    pub fn of(daily: bool, now: SystemTime) -> Self {
        let day = day_index(now);
        Self {
            daily,
            index: if daily { day } else { month_index(day) },
        }
    }

    /// `YYYY-MM-DD` or `YYYY-MM` (keys in Redis, `/usage`, alerts).
    pub fn label(&self) -> String {
        if self.daily {
            let (y, m, d) = civil(self.index);
            format!("{y:04}-{m:02}-{d:02}")
        } else {
            let (y, m) = (1970 + (self.index / 12) as i64, (self.index % 12) as u32 + 1);
            format!("{y:04}-{m:02}")
        }
    }

    /// When the period ends (the next one starts), as seconds since the epoch.
    pub fn resets_at(&self) -> u64 {
        if self.daily {
            (self.index + 1) * 86_400
        } else {
            let next = self.index + 1;
            let (y, m) = (1970 + (next / 12) as i64, (next % 12) as u32 + 1);
            days_from_civil(y, m, 1) * 86_400
        }
    }

    /// Seconds from `now` until the period resets (at least 1).
    pub fn retry_after(&self, now: SystemTime) -> u64 {
        let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.resets_at().saturating_sub(now).max(1)
    }
}

/// An RFC 3339 UTC timestamp of seconds since the epoch (`2026-12-05T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = civil(secs / 86_400);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A token bucket as GCRA (generic cell rate algorithm): one atomic "theoretical arrival
/// time", no lock. `rate` requests per second, up to `burst` at once.
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    burst: u64,
    /// Nanoseconds between requests at the sustained rate.
    interval: u64,
    /// Theoretical arrival time, nanoseconds since the epoch.
    tat: AtomicU64,
}

impl RateLimiter {
    /// `rate` requests per second (at least 1), bursts of `burst` (at least 1).
    pub fn new(rate: u64, burst: u64) -> Self {
        let rate = rate.max(1);
        Self {
            rate,
            burst: burst.max(1),
            interval: 1_000_000_000 / rate,
            tat: AtomicU64::new(0),
        }
    }

    /// A limiter with the same settings and state (its place in the bucket).
    pub fn clone_state(&self) -> Self {
        Self {
            rate: self.rate,
            burst: self.burst,
            interval: self.interval,
            tat: AtomicU64::new(self.tat.load(Ordering::Acquire)),
        }
    }

    /// The sustained rate.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Admits one request at `now`, or says how long until one would be admitted.
    pub fn admit(&self, now: SystemTime) -> Result<(), Duration> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let tolerance = self.interval * (self.burst - 1);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let start = tat.max(now);
            if start > now + tolerance {
                return Err(Duration::from_nanos(start - now - tolerance));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    /// The refusal text (the same form as the quotas').
    pub fn refusal(&self) -> String {
        format!(
            "ERR max requests per second limit exceeded. Limit: {}, Usage: {}",
            self.rate, self.burst
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn civil_dates_round_trip() {
        for day in [0, 59, 60, 365, 11_016, 20_426, 20_819, 47_482] {
            let (y, m, d) = civil(day);
            assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        // 2026-12-04 is day 20,791.
        assert_eq!(civil(20_791), (2026, 12, 4));
        assert_eq!(civil(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn periods_label_and_reset() {
        let now = at(20_791 * 86_400 + 3_600); // 2026-12-04T01:00:00Z
        let day = Period::of(true, now);
        assert_eq!(day.label(), "2026-12-04");
        assert_eq!(rfc3339(day.resets_at()), "2026-12-05T00:00:00Z");
        assert_eq!(day.retry_after(now), 23 * 3600);
        let month = Period::of(false, now);
        assert_eq!(month.label(), "2026-12");
        assert_eq!(rfc3339(month.resets_at()), "2027-01-01T00:00:00Z");
        // The last second of a month and the first of the next.
        let end = at(days_from_civil(2027, 1, 1) * 86_400 - 1);
        assert_eq!(Period::of(false, end).label(), "2026-12");
        assert_eq!(
            Period::of(false, at(days_from_civil(2027, 1, 1) * 86_400)).label(),
            "2027-01"
        );
        assert_eq!(
            Period::of(false, at(days_from_civil(2024, 2, 29) * 86_400)).label(),
            "2024-02"
        );
    }

    #[test]
    fn refusals_use_upstash_words() {
        assert_eq!(
            Kind::DailyCommands.refusal(100, 100),
            "ERR max daily request limit exceeded. Limit: 100, Usage: 100"
        );
        assert_eq!(
            Kind::MonthlyCommands.refusal(5, 6),
            "ERR max requests limit exceeded. Limit: 5, Usage: 6"
        );
    }

    #[test]
    fn rate_limiter_allows_the_burst_then_the_rate() {
        let rl = RateLimiter::new(10, 3);
        let t0 = at(1_000);
        for _ in 0..3 {
            assert!(rl.admit(t0).is_ok());
        }
        let wait = rl.admit(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(rl.admit(t0 + Duration::from_millis(100)).is_ok());
        assert!(rl.admit(t0 + Duration::from_millis(100)).is_err());
        // After a quiet second the whole burst is back, not more.
        let later = t0 + Duration::from_secs(5);
        for _ in 0..3 {
            assert!(rl.admit(later).is_ok());
        }
        assert!(rl.admit(later).is_err());
    }
}
