//! Which endpoint a request path names. Every path that is not one of the fixed endpoints is
//! a command in path form (Upstash has no 404 for unknown endpoints: every path is a command).
//! `/console` and everything under it is the web console, never a command.

/// The endpoint a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/` (also `//` and the empty path): one command as a JSON array body.
    Root,
    /// `/pipeline`: a non-atomic batch.
    Pipeline,
    /// `/multi-exec`: an atomic batch.
    MultiExec,
    /// `/subscribe/<ch>[/<ch>...]`: server-sent events; the raw channel segments follow.
    Subscribe(&'a str),
    /// `/psubscribe/<pattern>[/...]`: server-sent events for patterns.
    PSubscribe(&'a str),
    /// `/monitor`: server-sent MONITOR lines.
    Monitor,
    /// `/console` and `/console/...`: the web console (`http::console`); holds what follows
    /// `console/` (empty for the page itself).
    Console(&'a str),
    /// `/<cmd>/<arg>...`: the path form; holds the raw (still percent-encoded) path without its
    /// leading slashes and without one trailing slash.
    Command(&'a str),
}

impl Route<'_> {
    /// A short fixed label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Root => "single",
            Route::Pipeline => "pipeline",
            Route::MultiExec => "multi_exec",
            Route::Subscribe(_) => "subscribe",
            Route::PSubscribe(_) => "psubscribe",
            Route::Monitor => "monitor",
            Route::Console(_) => "console",
            Route::Command(_) => "path",
        }
    }
}

/// Classifies a raw request path (without the query string). Repeated leading slashes are
/// collapsed (Python's client sends `//pipeline` when the base URL ends in `/`), and one
/// trailing slash is ignored.
pub fn classify(raw_path: &str) -> Route<'_> {
    let trimmed = raw_path.trim_start_matches('/');
    let rest = trimmed.strip_suffix('/').unwrap_or(trimmed);
    match rest {
        "" => Route::Root,
        "pipeline" => Route::Pipeline,
        "multi-exec" => Route::MultiExec,
        "monitor" => Route::Monitor,
        "subscribe" => Route::Subscribe(""),
        "psubscribe" => Route::PSubscribe(""),
        "console" => Route::Console(""),
        _ => {
            if let Some(ch) = rest.strip_prefix("subscribe/") {
                Route::Subscribe(ch)
            } else if let Some(pat) = rest.strip_prefix("psubscribe/") {
                Route::PSubscribe(pat)
            } else if let Some(asset) = rest.strip_prefix("console/") {
                Route::Console(asset)
            } else {
                Route::Command(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_fixed_endpoints_and_tolerates_slashes() {
        assert_eq!(classify("/"), Route::Root);
        assert_eq!(classify(""), Route::Root);
        assert_eq!(classify("//"), Route::Root);
        assert_eq!(classify("/pipeline"), Route::Pipeline);
        assert_eq!(classify("//pipeline"), Route::Pipeline);
        assert_eq!(classify("/pipeline/"), Route::Pipeline);
        assert_eq!(classify("/multi-exec"), Route::MultiExec);
        assert_eq!(classify("/monitor"), Route::Monitor);
        assert_eq!(classify("/subscribe/a/b"), Route::Subscribe("a/b"));
        assert_eq!(classify("/psubscribe/user:*"), Route::PSubscribe("user:*"));
        assert_eq!(classify("/set/k/v"), Route::Command("set/k/v"));
        assert_eq!(classify("/set/k//"), Route::Command("set/k/"));
        assert_eq!(classify("/get/a%2Fb"), Route::Command("get/a%2Fb"));
        assert_eq!(classify("/console"), Route::Console(""));
        assert_eq!(classify("/console/"), Route::Console(""));
        assert_eq!(classify("/console/app.js"), Route::Console("app.js"));
        assert_eq!(classify("/console/api/usage"), Route::Console("api/usage"));
        assert_eq!(classify("/CONSOLE"), Route::Command("CONSOLE"));
        assert_eq!(classify("/consoles"), Route::Command("consoles"));
    }
}
