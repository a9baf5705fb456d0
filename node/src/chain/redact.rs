//! The RPC URL often carries a provider's API key, in its path, query or user info
//! (`https://eth-mainnet.example/v2/<key>`). Wherever this node shows it (the status API, its
//! logs, the errors of RPC calls), it shows `scheme://host[:port]` only.

/// `url` as it may be shown: its scheme, host and port, nothing else.
pub fn redact_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else { return "<not a URL>".into() };
    match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
        (Some(host), None) => format!("{}://{host}", parsed.scheme()),
        (None, _) => format!("{}://", parsed.scheme()),
    }
}

/// `text` with every URL in it redacted ([`redact_url`]): the RPC client's errors quote the URL
/// they failed on.
pub fn redact_urls_in(text: &str) -> String {
    const SCHEMES: [&str; 4] = ["http://", "https://", "ws://", "wss://"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = SCHEMES.iter().filter_map(|s| rest.find(s)).min() {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | '<' | '>' | ',' | '`'))
            .unwrap_or(tail.len());
        out.push_str(&redact_url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scheme_host_and_port_are_shown() {
        let url = "https://user:pass@eth.example.com:8443/v2/s3cretkey?apikey=other#frag";
        assert_eq!(redact_url(url), "https://eth.example.com:8443");
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redact_url("wss://eth.example.com/ws/s3cretkey"), "wss://eth.example.com");
        assert_eq!(redact_url("not a url s3cretkey"), "<not a URL>");
    }

    #[test]
    fn urls_inside_error_text_are_redacted() {
        let error = "eth_blockNumber: error sending request for url (https://eth.example.com/v2/s3cretkey): \
                     connection refused; also \"http://a.example/b?key=s3cretkey\"";
        let shown = redact_urls_in(error);
        assert!(!shown.contains("s3cretkey"), "{shown}");
        assert!(shown.contains("(https://eth.example.com)"), "{shown}");
        assert!(shown.contains("\"http://a.example\""), "{shown}");
        assert_eq!(redact_urls_in("no url here"), "no url here");
    }
}
