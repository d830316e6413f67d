//! `restdis healthcheck`: asks the admin listener's `/readyz` over plain HTTP/1.1 with the
//! standard library alone (container images then need no curl), and says whether it answered
//! 200. Container health checks run it as `HEALTHCHECK CMD ["restdis", "healthcheck"]`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where to ask: `addr` as given, with an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
pub fn target(addr: &str) -> Result<SocketAddr, String> {
    let mut found = addr
        .to_socket_addrs()
        .map_err(|e| format!("'{addr}' is not an address: {e}"))?
        .next()
        .ok_or_else(|| format!("'{addr}' resolves to nothing"))?;
    if found.ip().is_unspecified() {
        found.set_ip(match found {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(found)
}

/// `GET /readyz` at `addr` within `timeout`: `Ok` on a 200, else why not.
pub fn check(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: restdis\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot ask {addr}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("/readyz at {addr} answered {code}")),
        None => Err(format!("/readyz at {addr} gave no HTTP status line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        assert_eq!(target("0.0.0.0:9079").unwrap(), "127.0.0.1:9079".parse().unwrap());
        assert_eq!(target("[::]:9079").unwrap(), "[::1]:9079".parse().unwrap());
        assert_eq!(target("10.1.2.3:1").unwrap(), "10.1.2.3:1".parse().unwrap());
        assert!(target("nonsense").is_err());
    }
}
