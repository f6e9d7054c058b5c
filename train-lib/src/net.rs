//! What the networked crates (`train-image`, `route-wire`'s client) decide the same way: which
//! hosts are loopback (plain HTTP is fine there and nowhere else unless configured), which CA
//! certificates a configured file holds, and what a failed TLS handshake means to the person
//! who has to fix it. Pure functions: nothing here opens a connection.

use std::error::Error;

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The file holds no `-----BEGIN CERTIFICATE-----` block.
    #[error("{0}: no PEM certificate in it (expected one or more -----BEGIN CERTIFICATE----- blocks: the consortium's CA certificate)")]
    NoCertificate(String),
    /// The file cannot be read.
    #[error("{path}: {source} (the CA file must be readable by this user)")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`, or an address) is this machine: plain
/// HTTP there crosses no network.
pub fn is_loopback_host(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map(|(h, _)| h)
        .unwrap_or_else(|| match host.parse::<std::net::IpAddr>() {
            Ok(_) => host,
            Err(_) => host.rsplit_once(':').map_or(host, |(h, _)| h),
        });
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host (and port) of an `http://` or `https://` URL.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// Whether a request to `url` would carry credentials in clear across a network: plain HTTP
/// to a host that is not this machine.
pub fn plain_off_loopback(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        && !is_loopback_host(url_host(url))
}

/// The certificates of a PEM file (a CA bundle), each as its own PEM block: HTTP clients take
/// them one by one.
pub fn pem_certificates(pem: &[u8], origin: &str) -> Result<Vec<Vec<u8>>, NetError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]).into_bytes());
        rest = &rest[end..];
    }
    if out.is_empty() {
        return Err(NetError::NoCertificate(origin.to_string()));
    }
    Ok(out)
}

/// [`pem_certificates`] of the file at `path`.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<Vec<u8>>, NetError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| NetError::Read {
        path: shown.clone(),
        source,
    })?;
    pem_certificates(&pem, &shown)
}

/// `e` and its sources, then, when the chain shows a refused certificate, what it means and
/// what to do. HTTP clients name the URL and the TLS library the reason in its own terms
/// ("invalid peer certificate: UnknownIssuer"); operators need the consequence.
pub fn explain(e: &(dyn Error + 'static)) -> String {
    let message = crate::text::chain(e);
    match tls_hint(&message) {
        Some(hint) => format!("{message}. {hint}"),
        None => message,
    }
}

/// What a refused certificate means, from the TLS library's words.
pub fn tls_hint(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if !(m.contains("certificate") || m.contains("tls") || m.contains("handshake")) {
        return None;
    }
    Some(if m.contains("expired") {
        "The server's TLS certificate has expired (or this machine's clock is wrong): nothing was sent. Renew the certificate, or check the clock"
    } else if m.contains("notvalidyet") || m.contains("not valid yet") {
        "The server's TLS certificate is not valid yet (or this machine's clock is wrong): nothing was sent. Check the clock"
    } else if m.contains("unknownissuer")
        || m.contains("unknown issuer")
        || m.contains("self-signed")
        || m.contains("self signed")
    {
        "The server's TLS certificate is not signed by a CA this machine trusts: nothing was sent. Trust the consortium's CA (a configured CA file: station.toml [tls] ca_file, `train --ca-file`; or the system store: update-ca-certificates) if this is the right server"
    } else if m.contains("notvalidforname")
        || m.contains("not valid for name")
        || m.contains("hostname")
    {
        "The server's TLS certificate is not issued for the name or address used: nothing was sent. Use the name the certificate names, or reissue it with this one"
    } else if m.contains("invalid peer certificate")
        || m.contains("badsignature")
        || m.contains("revoked")
    {
        "The server's TLS certificate was refused: nothing was sent. Check the certificate the server presents (openssl s_client -connect HOST:PORT)"
    } else if m.contains("corrupt message")
        || m.contains("invalidcontenttype")
        || m.contains("wrong version")
    {
        "The server does not speak TLS there: use http:// only for a server on this machine or one configured as insecure, or the port where it serves HTTPS"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_the_rest() {
        for (h, want) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("127.9.9.9", true),
            ("[::1]:5000", true),
            ("::1", true),
            ("10.0.0.1:5000", false),
            ("registry.example.org", false),
            ("localhost.example.org:443", false),
            ("[::2]:80", false),
        ] {
            assert_eq!(is_loopback_host(h), want, "{h}");
        }
    }

    #[test]
    fn plain_http_counts_only_off_loopback() {
        assert!(plain_off_loopback("http://10.1.2.3:8080/v1"));
        assert!(plain_off_loopback("HTTP://routes.example.org"));
        assert!(plain_off_loopback("http://user@routes.example.org/"));
        assert!(!plain_off_loopback("http://127.0.0.1:8080"));
        assert!(!plain_off_loopback("http://localhost/v1"));
        assert!(!plain_off_loopback("https://10.1.2.3"));
        // A loopback name in the user part does not make the host loopback.
        assert!(plain_off_loopback("http://localhost@evil.example.org/"));
    }

    #[test]
    fn a_bundle_gives_each_certificate_and_a_file_without_one_is_refused() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let bundle = format!("# ca\n{one}\n\n{one}\n");
        assert_eq!(pem_certificates(bundle.as_bytes(), "f").unwrap().len(), 2);
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            pem_certificates(key.as_bytes(), "f"),
            Err(NetError::NoCertificate(_))
        ));
        assert!(matches!(
            read_ca_file(std::path::Path::new("/nonexistent/ca.pem")),
            Err(NetError::Read { .. })
        ));
    }

    #[test]
    fn refused_certificates_are_explained() {
        let e = |m: &str| tls_hint(m).unwrap_or("");
        assert!(e("invalid peer certificate: Expired").contains("expired"));
        assert!(e("invalid peer certificate: UnknownIssuer").contains("not signed by a CA"));
        assert!(e("invalid peer certificate: NotValidForName").contains("not issued for"));
        assert!(tls_hint("connection refused").is_none());
    }
}
