//! The client's address behind a load balancer. Every per-address limit (sign-ins,
//! sign-ups, pairing codes) and the audit trail need the address of the person, not of
//! the proxy in front of every process. A request that arrives from a trusted proxy
//! (`--trusted-proxy`) is taken from its `X-Forwarded-For` header: the nearest address
//! in that list that is not itself a trusted proxy. From anyone else the header is
//! ignored, so that a client cannot pick the address its attempts are counted against.
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

/// The header a proxy appends the address it received the request from to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// Entries of `X-Forwarded-For` read at most, from the nearest; a longer chain is cut.
pub const MAX_FORWARDED_HOPS: usize = 16;

/// A proxy address or network (`10.0.0.7`, `10.0.0.0/8`, `fd00::/8`); an IPv4-mapped
/// IPv6 address counts as the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "{text:?} is not a proxy address: give an IP address (10.0.0.7) or a network \
                 (10.0.0.0/8, fd00::/8)"
            )
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address = IpAddr::from_str(address)
            .map_err(|_| refuse())?
            .to_canonical();
        let network = match prefix {
            Some(p) => {
                let p = p.parse::<u8>().map_err(|_| refuse())?;
                IpNet::new(address, p).map_err(|_| refuse())?
            }
            None => IpNet::from(address),
        };
        Ok(Self(network))
    }
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0.addr(), self.0.prefix_len())
    }
}

/// The client's address: `peer` itself, unless `peer` is a trusted proxy, in which case
/// the nearest untrusted address of the `X-Forwarded-For` values (each possibly a
/// comma-separated list, oldest first). A malformed entry ends the walk at the last
/// trusted hop: nothing after it can be believed.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[TrustedProxy],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
        match IpAddr::from_str(hop.trim()) {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hold_what_they_should() {
        let lan: TrustedProxy = "10.1.0.0/16".parse().unwrap();
        assert!(lan.contains(ip("10.1.200.3")));
        assert!(!lan.contains(ip("10.2.0.1")));
        assert!(
            lan.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped addresses count"
        );
        assert!(!lan.contains(ip("fd00::1")));
        let one: TrustedProxy = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: TrustedProxy = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "proxy.internal",
            "10.0.0.0/x",
        ] {
            let err = bad.parse::<TrustedProxy>().unwrap_err();
            assert!(err.contains("give an IP address"), "{err}");
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_address(ip("203.0.113.5"), ["198.51.100.1"].into_iter(), &trusted),
            ip("203.0.113.5")
        );
        // Through the load balancer: the address it saw.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["203.0.113.5"].into_iter(), &trusted),
            ip("203.0.113.5")
        );
        // A forged entry the client sent ahead of the real one is skipped: the nearest
        // untrusted address is the one the proxy appended.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                ["198.51.100.1, 203.0.113.5", "10.0.0.3"].into_iter(),
                &trusted
            ),
            ip("203.0.113.5")
        );
        // No header, or garbage: the proxy's own address (never a made-up one).
        assert_eq!(
            client_address(ip("10.0.0.2"), std::iter::empty(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), ["not an address"].into_iter(), &trusted),
            ip("10.0.0.2")
        );
        // No trusted proxies configured: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["203.0.113.5"].into_iter(), &[]),
            ip("10.0.0.2")
        );
    }
}
