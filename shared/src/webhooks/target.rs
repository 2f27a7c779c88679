//! The SSRF guard: webhook URLs must be `https` and their hosts must resolve only to public
//! addresses — never loopback, private, link-local (incl. the 169.254.169.254 metadata service),
//! unique-local, CGNAT, multicast or unspecified ones — unless `FLOWLINE_ALLOW_PRIVATE_TARGETS=1`
//! (local development), which also allows `http`. Checked at registration (here) and again at
//! every delivery, through the resolver the delivery client connects with
//! (`flowline_adapters::webhook_http`), so a DNS answer that changed since registration cannot
//! reach inside.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::Url;

pub fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10) and the IETF protocol block (192.0.0.0/24).
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking (198.18.0.0/15) and reserved (240.0.0.0/4).
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_ipv4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses reach IPv4.
            if let Some(v4) = v6.to_ipv4() {
                return !v6.is_loopback() && !v6.is_unspecified() && is_public_ipv4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 (incl. AWS's fd00:ec2::254 metadata), link-local fe80::/10.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation 2001:db8::/32, NAT64 64:ff9b::/96 (may embed private IPv4).
                || (first == 0x2001 && v6.segments()[1] == 0xdb8)
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
                // Site-local fec0::/10; 6to4 2002::/16 and Teredo 2001::/32 embed IPv4 addresses
                || (first & 0xffc0) == 0xfec0
                || first == 0x2002
                || (first == 0x2001 && v6.segments()[1] == 0))
        }
    }
}

/// Checks a webhook URL's form; `Err` is the message for `details`.
pub fn check_url_form(text: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|_| "must be an absolute URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must use https".to_owned()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if text.len() > 2048 {
        return Err("must be at most 2048 characters".to_owned());
    }
    Ok(url)
}

/// Resolves the URL's host and checks every address.
pub async fn check_url(text: &str, allow_private: bool) -> Result<Url, String> {
    let url = check_url_form(text, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = resolve(&host, port)
        .await
        .map_err(|_| format!("host {host} does not resolve"))?;
    if addresses.is_empty() {
        return Err(format!("host {host} does not resolve"));
    }
    if addresses.iter().any(|addr| !is_public_ip(addr.ip())) {
        return Err(
            "must not point at a loopback, private, link-local or metadata address".to_owned(),
        );
    }
    Ok(url)
}

pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::7f00:1",
            "::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "fec0::1",
            "224.0.0.1",
            "::",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_must_be_https_and_public() {
        assert!(
            check_url("http://example.com/hook", false)
                .await
                .unwrap_err()
                .contains("https")
        );
        assert!(check_url("https://127.0.0.1/hook", false).await.is_err());
        assert!(check_url("https://[::1]/hook", false).await.is_err());
        assert!(
            check_url("https://169.254.169.254/latest/meta-data", false)
                .await
                .is_err()
        );
        assert!(
            check_url("https://user:pw@93.184.216.34/", false)
                .await
                .is_err()
        );
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("not a url", true).await.is_err());
    }
}
