//! The dev default: when no Redis URL is configured and nothing answers on 127.0.0.1:6379,
//! restdis starts a private `redis-server` (from `RESTDIS_REDIS_SERVER` or PATH) on a free
//! loopback port, without persistence, and stops it on exit. An explicit URL never spawns.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A private redis-server, killed (and its directory removed) when dropped.
pub struct DevRedis {
    child: Child,
    dir: PathBuf,
    /// Its `redis://` URL.
    pub url: String,
}

impl DevRedis {
    /// Stops the server and waits until it has exited.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for DevRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether something answers PING at `addr` within a short time.
pub async fn answers(addr: &str) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await.ok()?;
        (n > 0).then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), probe).await,
        Ok(Some(()))
    )
}

/// Starts a private redis-server and waits until it answers.
pub async fn start() -> Result<DevRedis, String> {
    let bin = std::env::var("RESTDIS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let dir = std::env::temp_dir().join(format!("restdis-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let child = Command::new(&bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "no Redis at 127.0.0.1:6379 and cannot start '{bin}' ({e}). Install Redis \
                 (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), \
                 or pass --redis-url"
            )
        })?;
    let redis = DevRedis {
        child,
        dir,
        url: format!("redis://127.0.0.1:{port}"),
    };
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !answers(&addr).await {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "started '{bin}' on port {port} but it did not answer within 10s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(redis)
}
