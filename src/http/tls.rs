//! TLS on the API listener: the certificate and key files ([`TlsFiles`]), loaded and checked
//! ([`load`]: PEM, key matches certificate, not expired), served through a swappable
//! certificate ([`Tls`], a rustls certificate resolver) so that [`Tls::reload`] and the file
//! watcher ([`Tls::watch`]) replace it for new handshakes without touching open connections.
//! ALPN offers `h2` and `http/1.1`; TLS 1.2 and 1.3, rustls with the ring provider.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{IntCounter, IntGauge};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How often [`Tls::watch`] looks at the files' modification times.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Where the certificate chain and its private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`--tls-key`).
    pub key: PathBuf,
}

/// A certificate and key as loaded, with the certificate's end of validity.
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// The leaf certificate's `notAfter`.
    pub not_after: SystemTime,
}

/// Reads and checks the files: both readable, PEM, a certificate chain and a private key that
/// belong together, the leaf certificate not expired at `now`. The error is one line naming
/// the file and what is wrong with it.
pub fn load(files: &TlsFiles, now: SystemTime) -> Result<Loaded, String> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let cert_pem =
        std::fs::read(&files.cert).map_err(|e| format!("tls cert: cannot read {cert_path}: {e}"))?;
    let key_pem = std::fs::read(&files.key).map_err(|e| format!("tls key: cannot read {key_path}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls cert: {cert_path} is not a valid PEM file ({e})"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "tls cert: {cert_path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    };
    let not_after = not_after(leaf).ok_or_else(|| {
        format!("tls cert: the first certificate in {cert_path} is not a readable X.509 certificate")
    })?;
    if not_after <= now {
        return Err(format!(
            "tls cert: the certificate in {cert_path} expired at {}",
            humantime::format_rfc3339_seconds(not_after)
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            format!("tls key: {key_path} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)")
        }
        e => format!("tls key: {key_path} is not a valid PEM file ({e})"),
    })?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            format!("tls key: the key in {key_path} does not match the certificate in {cert_path}")
        }
        e => format!("tls key: {key_path} cannot be used with {cert_path}: {e}"),
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        not_after,
    })
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Metric handles of the TLS listener.
#[derive(Clone)]
pub struct TlsMetrics {
    /// Reloads that failed (the old certificate stayed).
    pub reload_errors: IntCounter,
    /// Reloads that replaced the certificate.
    pub reloads: IntCounter,
    /// Handshakes that failed or timed out (plain HTTP on the TLS port counts here).
    pub handshake_errors: IntCounter,
    /// The served certificate's `notAfter`, seconds since the epoch.
    pub not_after: IntGauge,
}

/// The served certificate, swappable: rustls asks [`ResolvesServerCert::resolve`] for it on
/// every handshake, so a [`reload`](Self::reload) reaches the next handshake and leaves open
/// connections as they are.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification stamps as last loaded and as last seen by the watcher.
    stamps: Mutex<(Option<Stamp>, Option<Stamp>)>,
    metrics: TlsMetrics,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Modification time and length of the two files.
type Stamp = [(Option<SystemTime>, u64); 2];

impl Tls {
    /// Loads the files (see [`load`]).
    pub fn new(files: TlsFiles, metrics: TlsMetrics) -> Result<Arc<Self>, String> {
        let stamp = stamp(&files);
        let loaded = load(&files, SystemTime::now())?;
        metrics.not_after.set(epoch_seconds(loaded.not_after));
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(loaded.key),
            stamps: Mutex::new((Some(stamp), Some(stamp))),
            metrics,
        }))
    }

    /// The files served.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads the files and serves them to new handshakes. On any error (see [`load`]) the
    /// certificate served so far stays, the error is logged and counted in
    /// `restdis_tls_reload_errors_total`, and returned.
    pub fn reload(&self) -> Result<(), String> {
        let stamp = stamp(&self.files);
        match load(&self.files, SystemTime::now()) {
            Ok(loaded) => {
                if let Ok(mut current) = self.current.write() {
                    *current = loaded.key;
                }
                if let Ok(mut stamps) = self.stamps.lock() {
                    *stamps = (Some(stamp), Some(stamp));
                }
                self.metrics.not_after.set(epoch_seconds(loaded.not_after));
                self.metrics.reloads.inc();
                tracing::info!(
                    cert = %self.files.cert.display(),
                    not_after = %humantime::format_rfc3339_seconds(loaded.not_after),
                    "TLS certificate reloaded"
                );
                Ok(())
            }
            Err(e) => {
                if let Ok(mut stamps) = self.stamps.lock() {
                    // Not retried by the watcher until the files change again.
                    stamps.0 = Some(stamp);
                }
                self.metrics.reload_errors.inc();
                tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous certificate");
                Err(e)
            }
        }
    }

    /// A rustls acceptor over this certificate: TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, String> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Counts a failed or timed-out handshake.
    pub fn handshake_failed(&self) {
        self.metrics.handshake_errors.inc();
    }

    /// Reloads when the files change, until `shutdown` flips: every [`WATCH_INTERVAL`] it
    /// compares the files' modification times and lengths with those last loaded, and reloads
    /// once they have been the same on two looks in a row (so a certificate and key written one
    /// after the other are read together).
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if self.changed_and_settled() {
                let _ = self.reload();
            }
        }
    }

    fn changed_and_settled(&self) -> bool {
        let now = stamp(&self.files);
        let Ok(mut stamps) = self.stamps.lock() else {
            return false;
        };
        let (loaded, seen) = *stamps;
        stamps.1 = Some(now);
        loaded != Some(now) && seen == Some(now)
    }
}

impl ResolvesServerCert for Tls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    let one = |p: &PathBuf| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(&files.cert), one(&files.key)]
}

fn epoch_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `notAfter` of an X.509 certificate (DER): Certificate → tbsCertificate → validity.
fn not_after(cert: &[u8]) -> Option<SystemTime> {
    let (tag, cert, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = der(rest)?.2;
    }
    let (tag, validity, _) = der(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_not_before) = der(validity)?;
    let (tag, time, _) = der(after_not_before)?;
    asn1_time(tag, time)
}

/// One DER element: its tag, its contents and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn asn1_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match tag {
        0x17 if text.len() == 13 => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 15 => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, m, s) = (digits(&rest[4..6])?, digits(&rest[6..8])?, digits(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 to year-month-day (proleptic Gregorian; Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times() {
        let t = |tag, s: &str| asn1_time(tag, s.as_bytes()).map(epoch_seconds);
        assert_eq!(t(0x17, "700101000000Z"), Some(0));
        assert_eq!(t(0x17, "261204223500Z"), Some(1_796_423_700));
        assert_eq!(t(0x18, "20261204223500Z"), Some(1_796_423_700));
        assert_eq!(t(0x18, "20000229120000Z"), Some(951_825_600));
        assert_eq!(t(0x17, "2612042235Z"), None);
        assert_eq!(t(0x17, "261304223500Z"), None);
        assert_eq!(t(0x18, "2026120422350+"), None);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der(&[0x30, 0x01, 0xff, 0x00]),
            Some((0x30, &[0xff][..], &[0x00][..]))
        );
        assert_eq!(der(&[0x30, 0x81, 0x01, 0xff]), Some((0x30, &[0xff][..], &[][..])));
        assert_eq!(der(&[0x30, 0x02, 0xff]), None);
        assert_eq!(der(&[0x30, 0x80]), None);
        assert!(not_after(b"not a certificate").is_none());
    }
}
