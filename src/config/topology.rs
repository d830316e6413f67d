//! Which topology a Redis URL names: one Redis (`redis://`, `rediss://`, `unix://`), a
//! Redis Cluster (`redis+cluster://[user:pass@]host:port[,host:port...]`, `rediss+cluster://`
//! for TLS; the hosts are seed nodes), or a primary found through Redis Sentinel
//! (`redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER_NAME[/DB]`,
//! `rediss+sentinel://`; the hosts are sentinels, whose own password is the query parameter
//! `sentinel_password`). Parsing is pure; a bad URL gets one clear line.

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::backend::cluster::layout::{join_addr, split_addr};
use crate::backend::cluster::ClusterSpec;
use crate::backend::replicas::ReadFrom;
use crate::backend::sentinel::SentinelSpec;

/// What a Redis URL names.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// One Redis server.
    Single(ConnectionInfo),
    /// A Redis Cluster, by its seed nodes.
    Cluster(ClusterSpec),
    /// A primary found through Redis Sentinel.
    Sentinel(SentinelSpec),
}

impl RedisTarget {
    /// The connection settings of the server (a cluster: of its first seed).
    pub fn info(&self) -> &ConnectionInfo {
        match self {
            Self::Single(info) => info,
            Self::Cluster(spec) => &spec.template,
            Self::Sentinel(spec) => &spec.template,
        }
    }

    /// A cluster or Sentinel group as the backend starts it; `None` for one Redis.
    pub fn into_remote(self) -> Option<crate::backend::Remote> {
        match self {
            Self::Single(_) => None,
            Self::Cluster(spec) => Some(crate::backend::Remote::Cluster(spec)),
            Self::Sentinel(spec) => Some(crate::backend::Remote::Sentinel(spec)),
        }
    }

    /// The mode's name, for `--check-config`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster(_) => "cluster",
            Self::Sentinel(_) => "sentinel",
        }
    }
}

/// What `--check-config` says about each tenant on a Redis Cluster (the primaries and replicas
/// its seeds report, and the slot coverage) or behind Sentinel (the primary the sentinels name),
/// asked with a 2 s limit per node.
pub fn probe_report(tenants: &[super::TenantConfig]) -> String {
    let remote: Vec<(&str, RedisTarget)> = tenants
        .iter()
        .filter_map(|t| match parse(&t.redis_url) {
            Ok(RedisTarget::Single(_)) | Err(_) => None,
            Ok(RedisTarget::Sentinel(spec)) => Some((
                t.name.as_str(),
                RedisTarget::Sentinel(SentinelSpec {
                    read_from: t.read_from,
                    ..spec
                }),
            )),
            Ok(RedisTarget::Cluster(spec)) => Some((
                t.name.as_str(),
                RedisTarget::Cluster(ClusterSpec {
                    read_from: t.read_from,
                    ..spec
                }),
            )),
        })
        .collect();
    if remote.is_empty() {
        return String::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return "cannot start a runtime to ask the cluster or the sentinels\n".into();
    };
    let limit = std::time::Duration::from_secs(2);
    let mut out = String::new();
    for (name, target) in remote {
        out.push_str(&match target {
            RedisTarget::Cluster(spec) => match runtime.block_on(crate::backend::cluster::probe(&spec, limit)) {
                Ok(layout) => {
                    let read_from = spec.read_from;
                    let replicas: std::collections::BTreeSet<&String> =
                        layout.ranges.iter().flat_map(|r| &r.replicas).collect();
                    format!(
                        "tenant {name}: cluster mode, primaries {}, {} replica(s), {}/16384 slots covered{}\n",
                        layout.primaries().join(" "),
                        replicas.len(),
                        layout.covered(),
                        match read_from {
                            ReadFrom::Primary => "",
                            ReadFrom::Replicas => ", reads from the replicas",
                        }
                    )
                }
                Err(e) => format!(
                    "tenant {name}: cluster mode, seeds {}: not reachable now ({e})\n",
                    spec.seeds.join(" ")
                ),
            },
            RedisTarget::Sentinel(spec) => match runtime.block_on(crate::backend::sentinel::probe(&spec, limit)) {
                Ok((primary, sentinel)) => format!(
                    "tenant {name}: sentinel mode, master {} is {primary} (asked sentinel {sentinel} of {}){}\n",
                    spec.master,
                    spec.sentinels.join(" "),
                    match spec.read_from {
                        ReadFrom::Primary => String::new(),
                        ReadFrom::Replicas => {
                            match runtime.block_on(crate::backend::sentinel::ask_replicas(&spec, &sentinel, limit)) {
                                Ok(replicas) => format!(", reads from replicas: {}", replicas.join(" ")),
                                Err(e) => format!(", reads from replicas: cannot list them now ({e})"),
                            }
                        }
                    }
                ),
                Err(e) => format!(
                    "tenant {name}: sentinel mode, sentinels {}: not reachable now ({e})\n",
                    spec.sentinels.join(" ")
                ),
            },
            RedisTarget::Single(_) => String::new(),
        });
    }
    out
}

/// Parses a Redis URL into its topology.
pub fn parse(url: &str) -> Result<RedisTarget, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (plain, sentinel) = match scheme.to_ascii_lowercase().as_str() {
        "redis+cluster" => ("redis", false),
        "rediss+cluster" => ("rediss", false),
        "redis+sentinel" => ("redis", true),
        "rediss+sentinel" => ("rediss", true),
        _ => {
            return url
                .into_connection_info()
                .map(RedisTarget::Single)
                .map_err(|e| format!("invalid Redis URL: {e}"))
        }
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut nodes = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        let Some((name, port)) = split_addr(host) else {
            return Err(format!(
                "invalid Redis URL: {} {host:?} is not host:port ({scheme}://host:port[,host:port...])",
                if sentinel { "sentinel" } else { "cluster seed" }
            ));
        };
        nodes.push(join_addr(&name, port));
    }
    let mut sentinel_password = None;
    let mut rest_query = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sentinel_password", v)) if sentinel => {
                sentinel_password = Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8()
                        .map_err(|_| "invalid Redis URL: sentinel_password is not UTF-8".to_string())?
                        .into_owned(),
                )
            }
            _ => rest_query.push(pair),
        }
    }
    let query = if rest_query.is_empty() {
        String::new()
    } else {
        format!("?{}", rest_query.join("&"))
    };
    let segments: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (db, master) = if sentinel {
        match segments.as_slice() {
            [master] => ("0", master.to_string()),
            [master, db] => (*db, master.to_string()),
            _ => {
                return Err(format!(
                    "invalid Redis URL: {scheme}:// needs the master's name: {scheme}://host:port[,host:port...]/MASTER_NAME[/DB]"
                ))
            }
        }
    } else {
        match segments.as_slice() {
            [] | ["0"] => ("0", String::new()),
            other => {
                return Err(format!(
                    "invalid Redis URL: a Redis Cluster has only database 0, not {:?}",
                    other.join("/")
                ))
            }
        }
    };
    let template = format!("{plain}://{userinfo}{}/{db}{query}", nodes[0])
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("invalid Redis URL: {e}"))?;
    Ok(if sentinel {
        RedisTarget::Sentinel(SentinelSpec {
            template,
            sentinels: nodes,
            master,
            sentinel_password,
            read_from: Default::default(),
        })
    } else {
        RedisTarget::Cluster(ClusterSpec {
            template,
            seeds: nodes,
            read_from: Default::default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_give_seeds_and_credentials() {
        let RedisTarget::Cluster(spec) =
            parse("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001").unwrap()
        else {
            panic!("not a cluster")
        };
        assert_eq!(spec.seeds, ["10.0.0.1:7000", "10.0.0.2:7001"]);
        assert_eq!(spec.template.redis_settings().username(), Some("u"));
        assert_eq!(spec.template.redis_settings().password(), Some("p@ss"));
        let RedisTarget::Cluster(tls) = parse("rediss+cluster://h:6380/0").unwrap() else {
            panic!()
        };
        assert!(matches!(
            tls.template.addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
    }

    #[test]
    fn sentinel_urls_give_sentinels_master_db_and_passwords() {
        let RedisTarget::Sentinel(spec) =
            parse("redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/3?sentinel_password=s%21p").unwrap()
        else {
            panic!("not sentinel")
        };
        assert_eq!(spec.sentinels, ["s1:26379", "s2:26380"]);
        assert_eq!(spec.master, "mymaster");
        assert_eq!(spec.sentinel_password.as_deref(), Some("s!p"));
        assert_eq!(spec.template.redis_settings().db(), 3);
        assert_eq!(spec.template.redis_settings().password(), Some("pw"));
        let RedisTarget::Sentinel(spec) = parse("redis+sentinel://s1:26379/m").unwrap() else {
            panic!()
        };
        assert_eq!(
            (spec.master.as_str(), spec.template.redis_settings().db()),
            ("m", 0)
        );
        assert!(spec.sentinel_password.is_none());
    }

    #[test]
    fn plain_urls_are_one_redis_and_bad_ones_say_why() {
        assert_eq!(parse("redis://127.0.0.1:6379/2").unwrap().mode(), "single");
        assert!(parse("redis+cluster://h:1/3")
            .unwrap_err()
            .contains("only database 0"));
        assert!(parse("redis+cluster://h1:1,nope")
            .unwrap_err()
            .contains("not host:port"));
        assert!(parse("redis+sentinel://h:26379")
            .unwrap_err()
            .contains("MASTER_NAME"));
        assert!(parse("nonsense").is_err());
    }
}
