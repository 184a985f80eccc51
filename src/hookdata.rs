//! The XML libvirt writes to the hook's stdin: `<hookData><network>...`.
//! Only the few fields net-hook needs are read; everything else (metadata,
//! foreign namespaces, DHCP hosts, ports) is ignored.

use std::io::Read;
use std::net::IpAddr;

use serde::Deserialize;

/// Input that is not what libvirt sends; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad hook input: {0}")]
    Input(String),
    #[error("bad hook input: reading the network XML from stdin: {0}")]
    Read(std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Largest stdin we read. libvirt's network XML is a few KiB; a network with
/// thousands of DHCP host entries stays far below this.
pub const MAX_STDIN: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookNetwork {
    pub name: String,
    pub bridge: Option<String>,
    /// `None` for an isolated network (no `<forward>`).
    pub forward_mode: Option<String>,
    /// The network's own subnets (`<ip address= prefix=|netmask=>`).
    pub subnets: Vec<ipnet::IpNet>,
    /// `<forward><nat ipv6='yes'>`: libvirt masquerades IPv6 too.
    pub nat_ipv6: bool,
}

#[derive(Deserialize)]
struct HookDataXml {
    network: Option<NetworkXml>,
}

#[derive(Deserialize)]
struct NetworkXml {
    name: Option<String>,
    bridge: Option<BridgeXml>,
    forward: Option<ForwardXml>,
    #[serde(default)]
    ip: Vec<IpXml>,
}

#[derive(Deserialize)]
struct IpXml {
    #[serde(rename = "@address")]
    address: Option<String>,
    #[serde(rename = "@prefix")]
    prefix: Option<u8>,
    #[serde(rename = "@netmask")]
    netmask: Option<String>,
}

#[derive(Deserialize)]
struct NatXml {
    #[serde(rename = "@ipv6")]
    ipv6: Option<String>,
}

impl IpXml {
    /// The subnet, or `None` for an element without a usable address.
    fn subnet(&self) -> Option<ipnet::IpNet> {
        let addr: IpAddr = self.address.as_deref()?.parse().ok()?;
        let prefix = libvirt_prefix(addr, self.prefix, self.netmask.as_deref())?;
        Some(ipnet::IpNet::new(addr, prefix).ok()?.trunc())
    }
}

/// The prefix libvirt gives an `<ip>` (virSocketAddrGetIPPrefix): `prefix`
/// when above 0 (0 means unset), else the netmask's, else the address's
/// natural one: classful for IPv4 (A /8, B /16, C /24, 0.0.0.0 /0; class D
/// and E have none, an error there), /64 for IPv6 (`::` /0).
fn libvirt_prefix(addr: IpAddr, prefix: Option<u8>, netmask: Option<&str>) -> Option<u8> {
    if let Some(p) = prefix.filter(|&p| p > 0) {
        return Some(p);
    }
    if let Some(m) = netmask {
        return ipnet::ipv4_mask_to_prefix(m.parse().ok()?).ok();
    }
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some(0),
        IpAddr::V4(a) => match a.octets()[0] {
            0x00..=0x7f => Some(8),
            0x80..=0xbf => Some(16),
            0xc0..=0xdf => Some(24),
            _ => None,
        },
        IpAddr::V6(a) if a.is_unspecified() => Some(0),
        IpAddr::V6(_) => Some(64),
    }
}

#[derive(Deserialize)]
struct BridgeXml {
    #[serde(rename = "@name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ForwardXml {
    #[serde(rename = "@mode")]
    mode: Option<String>,
    nat: Option<NatXml>,
}

/// Reads at most [`MAX_STDIN`] bytes; more is an error, not a truncation.
pub fn read_capped(mut input: impl Read) -> Result<String> {
    let mut buf = Vec::new();
    input
        .by_ref()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(Error::Read)?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(Error::Input(format!(
            "stdin is larger than {} MiB; libvirt's network XML is never that big",
            MAX_STDIN >> 20
        )));
    }
    String::from_utf8(buf).map_err(|_| Error::Input("stdin is not UTF-8 XML".into()))
}

/// Parses `<hookData><network>` (what libvirt sends) or a bare `<network>`
/// (what `virsh net-dumpxml` prints, handy for re-running a hook by hand).
pub fn parse(xml: &str) -> Result<HookNetwork> {
    let bad = |e: quick_xml::DeError| Error::Input(format!("stdin is not libvirt hook XML: {e}"));
    let net = match root_element(xml)?.as_str() {
        "hookData" => quick_xml::de::from_str::<HookDataXml>(xml)
            .map_err(bad)?
            .network
            .ok_or_else(|| Error::Input("<hookData> has no <network> element".into()))?,
        "network" => quick_xml::de::from_str::<NetworkXml>(xml).map_err(bad)?,
        other => {
            return Err(Error::Input(format!(
                "stdin's root element is <{other}>, expected <hookData> or <network>"
            )));
        }
    };
    let name = net
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Input("the network XML has no <name>".into()))?;
    let nat_ipv6 = net
        .forward
        .as_ref()
        .and_then(|f| f.nat.as_ref())
        .and_then(|n| n.ipv6.as_deref())
        == Some("yes");
    Ok(HookNetwork {
        name,
        bridge: net.bridge.and_then(|b| b.name).filter(|b| !b.is_empty()),
        forward_mode: net.forward.map(|f| f.mode.unwrap_or_else(|| "nat".into())),
        subnets: net.ip.iter().filter_map(IpXml::subnet).collect(),
        nat_ipv6,
    })
}

/// The name of the first element, which also proves the input is XML that
/// is well-formed up to there.
fn root_element(xml: &str) -> Result<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                return Ok(name.into_inner().to_string());
            }
            Ok(Event::Eof) if xml.trim().is_empty() => {
                return Err(Error::Input(
                    "stdin is empty; expected libvirt's network XML".into(),
                ));
            }
            Ok(Event::Eof) => {
                return Err(Error::Input(
                    "stdin is not libvirt hook XML: no element found".into(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Error::Input(format!("stdin is not libvirt hook XML: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_network_and_missing_bridge() {
        let n = parse("<network><name>x</name><bridge name='br9'/></network>").unwrap();
        assert_eq!(n.bridge.as_deref(), Some("br9"));
        assert_eq!(n.forward_mode, None);
        let n = parse("<hookData><network><name>x</name><forward mode='bridge' dev='eth0'/></network></hookData>").unwrap();
        assert_eq!(n.bridge, None);
        assert_eq!(n.forward_mode.as_deref(), Some("bridge"));
    }

    #[test]
    fn subnets_and_nat_ipv6() {
        let n = parse(
            "<network><name>x</name><forward mode='nat'><nat ipv6='yes'/></forward>\
             <ip address='10.12.4.1' prefix='22'/><ip address='192.168.9.1' netmask='255.255.255.0'/>\
             <ip family='ipv6' address='fd00:12:4::1' prefix='64'></ip></network>",
        )
        .unwrap();
        let want: Vec<ipnet::IpNet> = ["10.12.4.0/22", "192.168.9.0/24", "fd00:12:4::/64"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(n.subnets, want);
        assert!(n.nat_ipv6);
        assert!(
            !parse("<network><name>x</name><forward mode='nat'/></network>")
                .unwrap()
                .nat_ipv6
        );
    }

    fn subnet(attrs: &str) -> Option<String> {
        let xml = format!("<network><name>x</name><ip {attrs}/></network>");
        parse(&xml)
            .unwrap()
            .subnets
            .first()
            .map(ToString::to_string)
    }

    #[test]
    fn missing_prefix_is_libvirts_natural_one() {
        for (attrs, want) in [
            // IPv4 by class, as libvirt does.
            ("address='10.12.4.1'", Some("10.0.0.0/8")),
            ("address='127.0.0.1'", Some("127.0.0.0/8")),
            ("address='128.0.0.1'", Some("128.0.0.0/16")),
            ("address='172.16.5.1'", Some("172.16.0.0/16")),
            ("address='191.255.0.1'", Some("191.255.0.0/16")),
            ("address='192.168.122.1'", Some("192.168.122.0/24")),
            ("address='223.1.2.3'", Some("223.1.2.0/24")),
            ("address='0.0.0.0'", Some("0.0.0.0/0")),
            // Class D and E: libvirt has no prefix for them.
            ("address='224.0.0.1'", None),
            ("address='240.0.0.1'", None),
            ("address='255.255.255.255'", None),
            // IPv6: /64, the wildcard /0.
            (
                "family='ipv6' address='fd00:12:4::1'",
                Some("fd00:12:4::/64"),
            ),
            ("family='ipv6' address='::'", Some("::/0")),
            // prefix='0' counts as unset.
            ("address='10.12.4.1' prefix='0'", Some("10.0.0.0/8")),
            (
                "address='10.12.4.1' prefix='0' netmask='255.255.252.0'",
                Some("10.12.4.0/22"),
            ),
            ("address='10.12.4.1' prefix='22'", Some("10.12.4.0/22")),
            ("address='10.12.4.1' netmask='255.0.255.0'", None),
        ] {
            assert_eq!(subnet(attrs).as_deref(), want, "{attrs}");
        }
    }

    #[test]
    fn forward_without_mode_is_nat() {
        let n = parse("<network><name>x</name><forward/></network>").unwrap();
        assert_eq!(n.forward_mode.as_deref(), Some("nat"));
    }

    #[test]
    fn rejects_garbage_truncation_and_wrong_root() {
        for bad in [
            "",
            "garbage",
            "<hookData><network><name>x</name>",
            "<domain><name>x</name></domain>",
            "<hookData></hookData>",
            "<network><bridge name='virbr1'/></network>",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::Input(_))),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn caps_stdin() {
        let big = vec![b' '; (MAX_STDIN + 1) as usize];
        assert!(matches!(read_capped(&big[..]), Err(Error::Input(_))));
        let ok = [b' '; 16];
        assert_eq!(read_capped(&ok[..]).unwrap().len(), 16);
        assert!(matches!(
            read_capped(&[0xff, 0xfe][..]),
            Err(Error::Input(_))
        ));
    }
}
