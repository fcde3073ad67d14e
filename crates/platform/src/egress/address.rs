//! Which addresses a request to a URL someone else chose must never reach.
//!
//! The list follows the IANA special-purpose registries: anything that is
//! not a unicast address on the public internet is refused, and addresses
//! that embed an IPv4 address (mapped, NAT64, 6to4) are judged by the
//! address they embed, so `::ffff:127.0.0.1` is loopback.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is off limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// `127.0.0.0/8`, `::1`: this host.
    Loopback,
    /// RFC 1918 and IPv6 unique-local: the operator's own networks.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`: the link, where cloud metadata lives.
    LinkLocal,
    /// Cloud instance metadata and credentials endpoints.
    Metadata,
    /// `100.64.0.0/10`: carrier-grade NAT, inside someone's network.
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`: "this host" on some systems.
    Unspecified,
    Multicast,
    /// Documentation, benchmarking, reserved and tunnelling ranges.
    Reserved,
}

impl Forbidden {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Forbidden::Loopback => "loopback",
            Forbidden::Private => "private",
            Forbidden::LinkLocal => "link_local",
            Forbidden::Metadata => "metadata",
            Forbidden::SharedAddressSpace => "shared",
            Forbidden::Unspecified => "unspecified",
            Forbidden::Multicast => "multicast",
            Forbidden::Reserved => "reserved",
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forbidden::Loopback => "a loopback address",
            Forbidden::Private => "a private address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::Metadata => "a cloud metadata address",
            Forbidden::SharedAddressSpace => "a carrier-grade NAT address",
            Forbidden::Unspecified => "an unspecified address",
            Forbidden::Multicast => "a multicast address",
            Forbidden::Reserved => "a reserved address",
        })
    }
}

/// Cloud metadata endpoints, named apart so logs say what was tried.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
];
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// Why `ip` must not be reached, or `None` for a public unicast address.
pub fn forbidden(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Like [`forbidden`], except for addresses inside `allowed` networks, which
/// an operator listed on purpose (a push relay on the private network).
/// Cloud metadata endpoints stay refused whatever is allowed: allowing
/// `100.64.0.0/10` for a relay must not open Alibaba's `100.100.100.200`.
pub fn refused(ip: IpAddr, allowed: &[IpNet]) -> Option<Forbidden> {
    let ip = canonical(ip);
    let class = forbidden(ip);
    if class != Some(Forbidden::Metadata) && allowed.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    class
}

/// `::ffff:a.b.c.d` is `a.b.c.d` to the kernel, so it is to the allow list.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    if METADATA_V4.contains(&ip) {
        return Some(Forbidden::Metadata);
    }
    let class = match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (127, _, _) => Forbidden::Loopback,
        (10, _, _) | (192, 168, _) => Forbidden::Private,
        (172, b, _) if (16..32).contains(&b) => Forbidden::Private,
        (169, 254, _) => Forbidden::LinkLocal,
        (100, b, _) if (64..128).contains(&b) => Forbidden::SharedAddressSpace,
        (224..=239, _, _) => Forbidden::Multicast,
        // IETF protocol assignments, TEST-NET-1/2/3, the 6to4 relay
        // anycast, benchmarking, and everything from 240/4 up (broadcast).
        (192, 0, 0) | (192, 0, 2) | (192, 88, 99) | (198, 51, 100) | (203, 0, 113) => {
            Forbidden::Reserved
        }
        (198, 18 | 19, _) | (240..=255, _, _) => Forbidden::Reserved,
        _ => return None,
    };
    Some(class)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if METADATA_V6.contains(&ip) {
        return Some(Forbidden::Metadata);
    }
    if let Some(embedded) = embedded_v4(ip) {
        return forbidden_v4(embedded);
    }
    let s = ip.segments();
    let class = match s[0] {
        _ if ip.is_unspecified() => Forbidden::Unspecified,
        _ if ip.is_loopback() => Forbidden::Loopback,
        0xfc00..=0xfdff => Forbidden::Private,
        0xfe80..=0xfebf => Forbidden::LinkLocal,
        // Deprecated site-local: still routed inside some networks.
        0xfec0..=0xfeff => Forbidden::Private,
        0xff00..=0xffff => Forbidden::Multicast,
        // Teredo tunnels to an address we cannot see; documentation;
        // ORCHIDv2; the discard prefix; the rest of ::/8 and 64::/16
        // (IPv4-compatible forms, local-use NAT64).
        0x2001 if s[1] == 0 || s[1] == 0x0db8 || (0x0020..0x0030).contains(&s[1]) => {
            Forbidden::Reserved
        }
        0x0100 if s[1..4] == [0, 0, 0] => Forbidden::Reserved,
        0x0000..=0x00ff => Forbidden::Reserved,
        // 2000::/3 is the only global unicast space.
        first if !(0x2000..0x4000).contains(&first) => Forbidden::Reserved,
        _ => return None,
    };
    Some(class)
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:0:0/96`),
/// NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) all reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail()),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<Forbidden> {
        forbidden(text.parse().expect("an address"))
    }

    #[test]
    fn the_public_internet_is_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn special_purpose_ranges_are_refused_with_their_reason() {
        let cases = [
            ("127.0.0.1", Forbidden::Loopback),
            ("127.255.255.254", Forbidden::Loopback),
            ("::1", Forbidden::Loopback),
            ("10.1.2.3", Forbidden::Private),
            ("172.16.0.1", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("fd12:3456::1", Forbidden::Private),
            ("fec0::1", Forbidden::Private),
            ("169.254.1.1", Forbidden::LinkLocal),
            ("fe80::1", Forbidden::LinkLocal),
            ("169.254.169.254", Forbidden::Metadata),
            ("169.254.170.2", Forbidden::Metadata),
            ("100.100.100.200", Forbidden::Metadata),
            ("192.0.0.192", Forbidden::Metadata),
            ("fd00:ec2::254", Forbidden::Metadata),
            ("100.64.0.1", Forbidden::SharedAddressSpace),
            ("0.0.0.0", Forbidden::Unspecified),
            ("0.1.2.3", Forbidden::Unspecified),
            ("::", Forbidden::Unspecified),
            ("224.0.0.1", Forbidden::Multicast),
            ("ff02::1", Forbidden::Multicast),
            ("255.255.255.255", Forbidden::Reserved),
            ("240.0.0.1", Forbidden::Reserved),
            ("192.0.2.1", Forbidden::Reserved),
            ("198.18.0.1", Forbidden::Reserved),
            ("2001:db8::1", Forbidden::Reserved),
            ("2001:0:4136:e378::1", Forbidden::Reserved),
            ("64:ff9b:1::1", Forbidden::Reserved),
            ("100::1", Forbidden::Reserved),
            ("::1.2.3.4", Forbidden::Reserved),
            ("4000::1", Forbidden::Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn addresses_that_embed_ipv4_are_judged_by_it() {
        assert_eq!(class("::ffff:127.0.0.1"), Some(Forbidden::Loopback));
        assert_eq!(class("::ffff:169.254.169.254"), Some(Forbidden::Metadata));
        assert_eq!(class("64:ff9b::a00:1"), Some(Forbidden::Private));
        assert_eq!(class("2002:c0a8:101::1"), Some(Forbidden::Private));
        assert_eq!(class("2002:7f00:1::1"), Some(Forbidden::Loopback));
    }

    #[test]
    fn the_allow_list_opens_only_what_it_names() {
        let allowed: Vec<IpNet> = vec!["10.8.0.0/16".parse().expect("cidr")];
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert_eq!(refused(ip("10.8.3.4"), &allowed), None);
        assert_eq!(refused(ip("::ffff:10.8.3.4"), &allowed), None);
        assert_eq!(refused(ip("10.9.0.1"), &allowed), Some(Forbidden::Private));
        assert_eq!(
            refused(ip("169.254.169.254"), &allowed),
            Some(Forbidden::Metadata)
        );
        let wide: Vec<IpNet> = vec![
            "100.64.0.0/10".parse().expect("cidr"),
            "169.254.0.0/16".parse().expect("cidr"),
        ];
        assert_eq!(
            refused(ip("100.100.100.200"), &wide),
            Some(Forbidden::Metadata)
        );
        assert_eq!(
            refused(ip("169.254.169.254"), &wide),
            Some(Forbidden::Metadata)
        );
        assert_eq!(refused(ip("100.64.0.7"), &wide), None);
    }
}
