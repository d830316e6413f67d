//! SRH drop-in: the variables of serverless-redis-http (`SRH_MODE=env` with `SRH_TOKEN`,
//! `SRH_CONNECTION_STRING`, `SRH_MAX_CONNECTIONS`, `SRH_PORT`; or `SRH_MODE=file` with
//! `srh-config/tokens.json`), so a compose or CI file written for SRH works unchanged.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::TenantConfig;

/// SRH variables restdis reads.
pub const KNOWN: &[&str] = &[
    "SRH_MODE",
    "SRH_TOKEN",
    "SRH_CONNECTION_STRING",
    "SRH_MAX_CONNECTIONS",
    "SRH_PORT",
    "SRH_IPV6",
];

/// Where SRH's file mode reads its tokens (relative to the working directory, as SRH does
/// relative to its `/app`).
pub const TOKENS_FILE: &str = "srh-config/tokens.json";

/// What SRH's variables configure.
pub struct Srh {
    /// `0.0.0.0:$SRH_PORT` (SRH listens on every interface; its tokens make that safe).
    pub listen: String,
    /// One tenant per SRH token.
    pub tenants: Vec<TenantConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    srh_id: String,
    connection_string: String,
    #[serde(default)]
    max_connections: Option<usize>,
}

/// Reads SRH's variables; `None` when `SRH_MODE` is not set.
pub fn from_env(env: &BTreeMap<String, String>) -> Result<Option<Srh>, String> {
    let get = |k: &str| env.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let Some(mode) = get("SRH_MODE") else {
        if env.contains_key("SRH_MODE") {
            return Err("SRH_MODE is empty: set it to env or file".into());
        }
        if let Some(set) = KNOWN.iter().find(|k| env.contains_key(**k)) {
            return Err(format!(
                "{set} is set but SRH_MODE is not: set SRH_MODE=env (or file)"
            ));
        }
        return Ok(None);
    };
    let port = get("SRH_PORT").unwrap_or_else(|| "80".into());
    let port: u16 = port
        .parse()
        .map_err(|_| format!("SRH_PORT: '{port}' is not a port number"))?;
    let ipv6 = get("SRH_IPV6").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let listen = if ipv6 {
        format!("[::]:{port}")
    } else {
        format!("0.0.0.0:{port}")
    };
    let max = |v: Option<String>| -> Result<usize, String> {
        match v {
            None => Ok(3),
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("SRH_MAX_CONNECTIONS: '{v}' is not a positive number")),
        }
    };
    let tenants = match mode.as_str() {
        "env" => {
            let token = get("SRH_TOKEN").ok_or("SRH_MODE=env needs SRH_TOKEN")?;
            let url = get("SRH_CONNECTION_STRING").ok_or("SRH_MODE=env needs SRH_CONNECTION_STRING")?;
            vec![TenantConfig {
                limits: Default::default(),
                alert_thresholds: Vec::new(),
                name: "srh".into(),
                tokens: vec![token],
                read_only_tokens: Vec::new(),
                redis_url: url,
                read_from: Default::default(),
                db: None,
                connections: max(get("SRH_MAX_CONNECTIONS"))?,
            }]
        }
        "file" => {
            let text = std::fs::read_to_string(TOKENS_FILE)
                .map_err(|e| format!("SRH_MODE=file: cannot read {TOKENS_FILE}: {e}"))?;
            let entries: BTreeMap<String, FileEntry> =
                serde_json::from_str(&text).map_err(|e| format!("{TOKENS_FILE}: {e}"))?;
            entries
                .into_iter()
                .map(|(token, e)| TenantConfig {
                    limits: Default::default(),
                    alert_thresholds: Vec::new(),
                    name: e.srh_id,
                    tokens: vec![token],
                    read_only_tokens: Vec::new(),
                    redis_url: e.connection_string,
                    read_from: Default::default(),
                    db: None,
                    connections: e.max_connections.unwrap_or(3).max(1),
                })
                .collect()
        }
        other => return Err(format!("SRH_MODE: '{other}' is neither env nor file")),
    };
    Ok(Some(Srh { listen, tenants }))
}
