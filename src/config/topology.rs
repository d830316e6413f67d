//! Which topology a Redis URL names: one Redis (`redis://`, `rediss://`, `unix://`) or a
//! Redis Cluster (`redis+cluster://[user:pass@]host:port[,host:port...]`, `rediss+cluster://`
//! for TLS; the hosts are seed nodes). Pure: parsing only; a bad URL gets one clear line.

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::backend::cluster::ClusterSpec;

/// What a Redis URL names.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// One Redis server.
    Single(ConnectionInfo),
    /// A Redis Cluster, by its seed nodes.
    Cluster(ClusterSpec),
}

impl RedisTarget {
    /// The connection settings of the server (a cluster: of its first seed).
    pub fn info(&self) -> &ConnectionInfo {
        match self {
            Self::Single(info) => info,
            Self::Cluster(spec) => &spec.template,
        }
    }

    /// The mode's name, for `--check-config`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster(_) => "cluster",
        }
    }
}

/// What `--check-config` says about each tenant on a Redis Cluster: the primaries and
/// replicas its seeds report and the slot coverage (asked with a 2 s limit per seed).
pub fn probe_report(tenants: &[super::TenantConfig]) -> String {
    let clusters: Vec<(&str, ClusterSpec)> = tenants
        .iter()
        .filter_map(|t| match parse(&t.redis_url) {
            Ok(RedisTarget::Cluster(spec)) => Some((t.name.as_str(), spec)),
            _ => None,
        })
        .collect();
    if clusters.is_empty() {
        return String::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return "cluster: cannot start a runtime to ask the seeds\n".into();
    };
    let mut out = String::new();
    for (name, spec) in clusters {
        let found = runtime.block_on(crate::backend::cluster::probe(
            &spec,
            std::time::Duration::from_secs(2),
        ));
        out.push_str(&match found {
            Ok(layout) => {
                let replicas: std::collections::BTreeSet<&String> =
                    layout.ranges.iter().flat_map(|r| &r.replicas).collect();
                format!(
                    "tenant {name}: cluster mode, primaries {}, {replicas} replica(s), {}/16384 slots covered\n",
                    layout.primaries().join(" "),
                    layout.covered(),
                    replicas = replicas.len()
                )
            }
            Err(e) => format!("tenant {name}: cluster mode, seeds {}: not reachable now ({e})\n", spec.seeds.join(" ")),
        });
    }
    out
}

/// Parses a Redis URL into its topology.
pub fn parse(url: &str) -> Result<RedisTarget, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let plain = match scheme.to_ascii_lowercase().as_str() {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        s if s.ends_with("+sentinel") => {
            return Err(format!(
                "invalid Redis URL: {scheme}:// (Sentinel) is not supported yet; point restdis at the primary, or at a Redis Cluster with redis+cluster://"
            ))
        }
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
    if !matches!(path.trim_matches('/'), "" | "0") {
        return Err(format!(
            "invalid Redis URL: a Redis Cluster has only database 0, not {:?}",
            path.trim_matches('/')
        ));
    }
    let mut seeds = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        let Some((name, port)) = crate::backend::cluster::layout::split_addr(host) else {
            return Err(format!(
                "invalid Redis URL: cluster seed {host:?} is not host:port ({scheme}://host:port[,host:port...])"
            ));
        };
        seeds.push(crate::backend::cluster::layout::join_addr(&name, port));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let first = format!("{plain}://{userinfo}{}/0{query}", seeds[0]);
    let template = first
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("invalid Redis URL: {e}"))?;
    Ok(RedisTarget::Cluster(ClusterSpec { template, seeds }))
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
    fn plain_urls_are_one_redis_and_bad_ones_say_why() {
        assert_eq!(parse("redis://127.0.0.1:6379/2").unwrap().mode(), "single");
        assert!(parse("redis+cluster://h:1/3")
            .unwrap_err()
            .contains("only database 0"));
        assert!(parse("redis+cluster://h1:1,nope")
            .unwrap_err()
            .contains("not host:port"));
        assert!(parse("redis+sentinel://h:26379/mymaster")
            .unwrap_err()
            .contains("Sentinel"));
        assert!(parse("nonsense").is_err());
    }
}
