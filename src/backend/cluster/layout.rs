//! The cluster's layout as `CLUSTER SHARDS` (Redis 7) or `CLUSTER SLOTS` (older servers)
//! reports it: which primary serves which slot range, and its replicas. Pure: parsed from a
//! reply, asked for owners and coverage.

use redis::Value;

use super::slot::SLOTS;

/// One contiguous range of slots and the nodes that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
    /// The primary's `host:port`.
    pub primary: String,
    /// The primary's node id ("" when the reply did not give it).
    pub primary_id: String,
    /// The replicas' `host:port`.
    pub replicas: Vec<String>,
}

/// The whole layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The ranges, by first slot.
    pub ranges: Vec<Range>,
}

impl Layout {
    /// Parses a `CLUSTER SLOTS` reply. `asked_host` stands in for an empty host (a node
    /// names itself with `""` when it does not know its own address).
    pub fn from_cluster_slots(reply: &Value, asked_host: &str) -> Result<Self, String> {
        let Value::Array(entries) = reply else {
            return Err("CLUSTER SLOTS did not answer a list".into());
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(parts) = entry else {
                return Err("CLUSTER SLOTS: an entry is not a list".into());
            };
            let (Some(Value::Int(start)), Some(Value::Int(end))) = (parts.first(), parts.get(1)) else {
                return Err("CLUSTER SLOTS: an entry has no slot range".into());
            };
            if *start < 0 || *end < *start || *end as usize >= SLOTS {
                return Err(format!("CLUSTER SLOTS: bad range {start}-{end}"));
            }
            let mut nodes = parts[2..].iter().filter_map(|n| address(n, asked_host));
            let Some(primary) = nodes.next() else {
                return Err(format!("CLUSTER SLOTS: no primary for {start}-{end}"));
            };
            let primary_id = match parts.get(2) {
                Some(Value::Array(node)) => node.get(2).and_then(text).unwrap_or_default(),
                _ => String::new(),
            };
            ranges.push(Range {
                start: *start as u16,
                end: *end as u16,
                primary,
                primary_id,
                replicas: nodes.collect(),
            });
        }
        ranges.sort_by_key(|r| r.start);
        Ok(Self { ranges })
    }

    /// Parses a `CLUSTER SHARDS` reply (RESP2: each shard a flat list of `slots`, a flat list
    /// of range bounds, and `nodes`, each a flat list of fields). A replica whose health is
    /// `fail` is left out (`loading` is kept: Redis says it of every replica that has
    /// replicated nothing yet, as in a cluster never written to; one that is really loading
    /// refuses reads, and they go to its primary).
    pub fn from_cluster_shards(reply: &Value, asked_host: &str) -> Result<Self, String> {
        let Value::Array(shards) = reply else {
            return Err("CLUSTER SHARDS did not answer a list".into());
        };
        let mut ranges = Vec::new();
        for shard in shards {
            let (Some(Value::Array(bounds)), Some(Value::Array(nodes))) =
                (field(shard, "slots"), field(shard, "nodes"))
            else {
                return Err("CLUSTER SHARDS: a shard without slots or nodes".into());
            };
            let mut primary = None;
            let mut primary_id = String::new();
            let mut replicas = Vec::new();
            for node in nodes {
                let host = [field(node, "endpoint"), field(node, "ip")]
                    .into_iter()
                    .flatten()
                    .filter_map(text)
                    .find(|h| !h.is_empty() && h != "?")
                    .unwrap_or_else(|| asked_host.to_string());
                let (Some(Value::Int(port)), Some(role)) =
                    (field(node, "port"), field(node, "role").and_then(text))
                else {
                    continue;
                };
                let addr = join_addr(&host, *port as u16);
                if role == "master" {
                    primary = Some(addr);
                    primary_id = field(node, "id").and_then(text).unwrap_or_default();
                } else if field(node, "health").and_then(text).as_deref() != Some("fail") {
                    replicas.push(addr);
                }
            }
            for pair in bounds.chunks(2) {
                let [Value::Int(start), Value::Int(end)] = pair else {
                    return Err("CLUSTER SHARDS: a bad slot range".into());
                };
                if *start < 0 || *end < *start || *end as usize >= SLOTS {
                    return Err(format!("CLUSTER SHARDS: bad range {start}-{end}"));
                }
                let Some(primary) = primary.clone() else {
                    return Err(format!("CLUSTER SHARDS: no primary for {start}-{end}"));
                };
                ranges.push(Range {
                    start: *start as u16,
                    end: *end as u16,
                    primary,
                    primary_id: primary_id.clone(),
                    replicas: replicas.clone(),
                });
            }
        }
        ranges.sort_by_key(|r| r.start);
        Ok(Self { ranges })
    }

    /// The primaries, each once, in the order of the first slot they serve.
    pub fn primaries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.ranges {
            if !out.contains(&r.primary) {
                out.push(r.primary.clone());
            }
        }
        out
    }

    /// The node id of each of [`primaries`](Self::primaries) ("" where unknown).
    pub fn primary_ids(&self) -> Vec<String> {
        self.primaries()
            .iter()
            .map(|p| {
                self.ranges
                    .iter()
                    .find(|r| &r.primary == p)
                    .map(|r| r.primary_id.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The replicas of each of [`primaries`](Self::primaries), each once.
    pub fn replicas_by_primary(&self) -> Vec<Vec<String>> {
        self.primaries()
            .iter()
            .map(|p| {
                let mut out: Vec<String> = Vec::new();
                for r in self.ranges.iter().filter(|r| &r.primary == p) {
                    for replica in &r.replicas {
                        if !out.contains(replica) {
                            out.push(replica.clone());
                        }
                    }
                }
                out
            })
            .collect()
    }

    /// For every slot, the index in [`primaries`](Self::primaries) of its owner, or
    /// `u16::MAX` when no node serves it.
    pub fn owners(&self) -> Vec<u16> {
        let primaries = self.primaries();
        let mut owners = vec![u16::MAX; SLOTS];
        for r in &self.ranges {
            let i = primaries.iter().position(|p| *p == r.primary).unwrap_or(0) as u16;
            for slot in r.start..=r.end {
                owners[slot as usize] = i;
            }
        }
        owners
    }

    /// Slots served by some node.
    pub fn covered(&self) -> usize {
        self.owners().iter().filter(|&&o| o != u16::MAX).count()
    }
}

/// The value after `name` in a flat name/value list.
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Array(items) = value else { return None };
    items
        .chunks(2)
        .find(|pair| text(&pair[0]).is_some_and(|t| t == name))
        .and_then(|pair| pair.get(1))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `host:port` of one node entry (`[host, port, id, ...]`).
fn address(node: &Value, asked_host: &str) -> Option<String> {
    let Value::Array(parts) = node else { return None };
    let host = text(parts.first()?)?;
    let Value::Int(port) = parts.get(1)? else {
        return None;
    };
    let host = if host.is_empty() || host == "?" {
        asked_host.to_string()
    } else {
        host
    };
    Some(join_addr(&host, *port as u16))
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (IPv6 in brackets) into its parts.
pub fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(format!("id{port}").into_bytes()),
        ])
    }

    fn range(start: i64, end: i64, nodes: Vec<Value>) -> Value {
        let mut parts = vec![Value::Int(start), Value::Int(end)];
        parts.extend(nodes);
        Value::Array(parts)
    }

    #[test]
    fn parses_ranges_primaries_and_coverage() {
        let reply = Value::Array(vec![
            range(5461, 10922, vec![node("10.0.0.2", 7001), node("10.0.0.5", 7004)]),
            range(0, 5460, vec![node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            range(10923, 16383, vec![node("", 7002)]),
        ]);
        let layout = Layout::from_cluster_slots(&reply, "seed").unwrap();
        assert_eq!(
            layout.primaries(),
            ["10.0.0.1:7000", "10.0.0.2:7001", "seed:7002"]
        );
        assert_eq!(layout.ranges[0].replicas, ["10.0.0.4:7003"]);
        assert_eq!(layout.primary_ids(), ["id7000", "id7001", "id7002"]);
        assert_eq!(layout.replicas_by_primary()[1], ["10.0.0.5:7004"]);
        let owners = layout.owners();
        assert_eq!((owners[0], owners[5461], owners[16383]), (0, 1, 2));
        assert_eq!(layout.covered(), SLOTS);
    }

    #[test]
    fn uncovered_slots_have_no_owner_and_bad_replies_are_refused() {
        let reply = Value::Array(vec![range(0, 99, vec![node("h", 1)])]);
        let layout = Layout::from_cluster_slots(&reply, "h").unwrap();
        assert_eq!(layout.covered(), 100);
        assert_eq!(layout.owners()[100], u16::MAX);
        assert!(Layout::from_cluster_slots(&Value::Int(1), "h").is_err());
        assert!(
            Layout::from_cluster_slots(&Value::Array(vec![range(5, 1, vec![node("h", 1)])]), "h").is_err()
        );
        assert!(Layout::from_cluster_slots(&Value::Array(vec![range(0, 1, vec![])]), "h").is_err());
    }

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn shard_node(ip: &str, port: i64, role: &str, health: &str) -> Value {
        Value::Array(vec![
            b("id"),
            b(&format!("n{port}")),
            b("port"),
            Value::Int(port),
            b("ip"),
            b(ip),
            b("endpoint"),
            b(ip),
            b("role"),
            b(role),
            b("replication-offset"),
            Value::Int(10),
            b("health"),
            b(health),
        ])
    }

    #[test]
    fn parses_cluster_shards_like_cluster_slots() {
        let shard = |bounds: Vec<i64>, nodes: Vec<Value>| {
            Value::Array(vec![
                b("slots"),
                Value::Array(bounds.into_iter().map(Value::Int).collect()),
                b("nodes"),
                Value::Array(nodes),
            ])
        };
        let reply = Value::Array(vec![
            shard(
                vec![5461, 10922],
                vec![
                    shard_node("10.0.0.5", 7004, "replica", "online"),
                    shard_node("10.0.0.2", 7001, "master", "online"),
                ],
            ),
            shard(
                vec![0, 5000, 5001, 5460],
                vec![
                    shard_node("10.0.0.1", 7000, "master", "online"),
                    shard_node("10.0.0.4", 7003, "replica", "fail"),
                    shard_node("10.0.0.6", 7005, "replica", "loading"),
                ],
            ),
            shard(vec![10923, 16383], vec![shard_node("", 7002, "master", "online")]),
        ]);
        let layout = Layout::from_cluster_shards(&reply, "seed").unwrap();
        assert_eq!(
            layout.primaries(),
            ["10.0.0.1:7000", "10.0.0.2:7001", "seed:7002"]
        );
        assert_eq!(layout.ranges.len(), 4);
        assert_eq!(
            layout.ranges[0].replicas,
            ["10.0.0.6:7005"],
            "a failed replica is left out, one that has replicated nothing yet (loading) kept"
        );
        assert_eq!(layout.ranges[2].replicas, ["10.0.0.5:7004"]);
        assert_eq!(layout.primary_ids(), ["n7000", "n7001", "n7002"]);
        assert_eq!(layout.covered(), SLOTS);
        assert!(Layout::from_cluster_shards(&Value::Array(vec![shard(vec![0, 1], vec![])]), "h").is_err());
        assert!(Layout::from_cluster_shards(&Value::Int(3), "h").is_err());
    }

    #[test]
    fn addresses_round_trip() {
        assert_eq!(split_addr("127.0.0.1:7000"), Some(("127.0.0.1".into(), 7000)));
        assert_eq!(split_addr(&join_addr("::1", 7000)), Some(("::1".into(), 7000)));
        assert_eq!(split_addr("nope"), None);
    }
}
