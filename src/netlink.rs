//! The doing half: reads the host and runs plan steps over netlink
//! (rtnetlink's messages on a blocking socket).
//!
//! The socket is `SOCK_RAW`, not the `SOCK_DGRAM` netlink-sys opens by
//! default: for netlink the two behave the same, but Debian's libvirtd
//! AppArmor profile allows only `network netlink raw` to hooks it confines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkBuffer,
    NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{
    AfSpecBridge, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind, InfoVlan, LinkAttribute,
    LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{AddressMessageBuilder, LinkBridgeVlan, LinkUnspec, LinkVlan};

use crate::model::{Addr, Link, LinkKind, Mac, Neigh, Observed, Route};
use crate::plan::Step;

/// What a netlink request was for, to pick the advice for its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Setup,
    Read,
    CreateVlan,
    SetMtu,
    Change,
    CreateDummy,
    CreateTap,
    AddRoute,
}

impl Op {
    fn of(step: &Step) -> Op {
        match step {
            Step::CreateVlan { .. } => Op::CreateVlan,
            Step::CreateDummy { .. } => Op::CreateDummy,
            Step::CreateTap { .. } => Op::CreateTap,
            Step::AddRoute { .. } => Op::AddRoute,
            Step::SetMtu { .. } => Op::SetMtu,
            _ => Op::Change,
        }
    }
}

/// A failed netlink request: what it was for, the kernel's errno.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {}{}", errno_text(*.op, *.errno, *.lost), hint(*.op, *.errno))]
pub struct Error {
    pub op: Op,
    pub what: String,
    pub errno: Option<i32>,
    /// The connection failed (a send or receive error) or the kernel's
    /// answer did not come: whether the request was carried out is unknown.
    pub lost: bool,
}

fn errno_text(op: Op, errno: Option<i32>, lost: bool) -> String {
    match errno {
        _ if lost => format!(
            "the kernel's answer was lost (netlink socket error or no answer within {} s){}",
            REQUEST_TIMEOUT.as_secs(),
            if op == Op::Read {
                ""
            } else {
                ", so whether it was done is unknown"
            }
        ),
        Some(e) => std::io::Error::from_raw_os_error(e).to_string(),
        None => "netlink request failed".to_string(),
    }
}

/// How long one request may take. The kernel answers in microseconds; this
/// bounds a reply that is lost, so libvirt (which waits for the hook while
/// holding the network's lock) is never blocked for good.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Advice by what failed and how, never by the message's text.
fn hint(op: Op, errno: Option<i32>) -> &'static str {
    match (op, errno) {
        (_, Some(libc::EPERM | libc::EACCES)) => {
            " (net-hook needs root/CAP_NET_ADMIN; under AppArmor, install the hook as a link to /usr/bin/net-hook)"
        }
        (Op::CreateVlan, Some(libc::EOPNOTSUPP)) => {
            " (the kernel lacks 802.1Q support: `modprobe 8021q`)"
        }
        (Op::CreateVlan | Op::SetMtu, Some(libc::ERANGE | libc::EINVAL)) => {
            " (a VLAN's MTU cannot exceed its bridge's; check `mtu` in the config)"
        }
        (Op::CreateDummy, Some(libc::EOPNOTSUPP)) => {
            " (the kernel lacks dummy devices: `modprobe dummy`)"
        }
        (Op::CreateTap, Some(libc::ENOENT | libc::ENODEV)) => " (no /dev/net/tun: `modprobe tun`)",
        (Op::CreateTap, Some(libc::EBUSY)) => " (a tap of that name is in use)",
        (Op::AddRoute, Some(libc::EEXIST)) => {
            " (a route to that address appeared meanwhile; run the hook again, `net-hook check` shows it)"
        }
        (Op::AddRoute, Some(libc::ENETDOWN)) => " (the tap is down)",
        (Op::CreateVlan | Op::CreateDummy, Some(libc::EEXIST)) => {
            " (something else created it meanwhile; run the hook again)"
        }
        _ => "",
    }
}

impl Error {
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One blocking netlink socket, a request at a time.
///
/// rtnetlink builds and parses the messages; the transport is a plain
/// blocking socket rather than rtnetlink's async connection: the hook sends
/// one request and waits for its answer, so an async runtime added only
/// start-up work and syscalls (BENCHMARKS.md measures both).
pub struct Rtnl {
    sock: Option<std::os::fd::OwnedFd>,
    seq: u32,
    buf: Vec<u8>,
    index: HashMap<String, u32>,
}

/// Why a request failed: the kernel said so (its errno), or its answer was lost.
enum CallError {
    Nl(i32),
    Lost,
}

fn nl_err(op: Op, what: impl Into<String>, e: CallError) -> Error {
    match e {
        CallError::Nl(errno) => Error {
            op,
            what: what.into(),
            errno: Some(errno),
            lost: false,
        },
        CallError::Lost => Error {
            op,
            what: what.into(),
            errno: None,
            lost: true,
        },
    }
}

fn setup_err(what: &str, e: std::io::Error) -> Error {
    Error {
        op: Op::Setup,
        what: what.into(),
        errno: e.raw_os_error(),
        lost: false,
    }
}

/// The errno of a kernel's refusal, for the `Err(e) if ...` arms.
fn call_errno(e: &CallError) -> Option<i32> {
    match e {
        CallError::Nl(e) => Some(*e),
        CallError::Lost => None,
    }
}

/// What a request expects back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// A change: the kernel's ACK (or its refusal).
    Ack,
    /// A lookup: one message (or a refusal).
    One,
    /// A dump: messages up to `NLMSG_DONE`.
    Dump,
}

/// Receive buffer: the kernel sizes dump datagrams to fit 32 KiB.
const RECV_BUF: usize = 64 * 1024;

impl Rtnl {
    /// One netlink socket: opened only when a managed network needs it.
    pub fn open() -> Result<Rtnl> {
        Ok(Rtnl {
            sock: Some(connect()?),
            seq: 0,
            buf: vec![0; RECV_BUF],
            index: HashMap::new(),
        })
    }

    /// Sends `msg` and collects its answer. Any socket error, a timeout or a
    /// malformed answer makes the request `Lost` (whether a change was
    /// carried out is unknown) and drops the socket, so no late answer can
    /// be read as the next request's; the next request opens a new one.
    fn call(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        reply: Reply,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, CallError> {
        let res = self.exchange(msg, flags, reply);
        if matches!(res, Err(CallError::Lost)) {
            self.sock = None;
        }
        res
    }

    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        reply: Reply,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, CallError> {
        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, recv, send};
        use std::os::fd::AsRawFd;
        if self.sock.is_none() {
            self.sock = Some(connect().map_err(|_| CallError::Lost)?);
        }
        let fd = self
            .sock
            .as_ref()
            .map(|s| s.as_raw_fd())
            .ok_or(CallError::Lost)?;
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        req.header.sequence_number = seq;
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        loop {
            match send(fd, &out, MsgFlags::empty()) {
                Ok(n) if n == out.len() => break,
                Err(Errno::EINTR) => continue,
                _ => return Err(CallError::Lost),
            }
        }
        let mut got = Vec::new();
        loop {
            let n = match recv(fd, &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n <= self.buf.len() => n,
                Err(Errno::EINTR) => continue,
                // A timeout (SO_RCVTIMEO: EAGAIN), an overrun, a truncated datagram.
                _ => return Err(CallError::Lost),
            };
            let mut off = 0;
            while off < n {
                let data = &self.buf[off..n];
                let len = NetlinkBuffer::new_checked(data)
                    .map(|b| b.length() as usize)
                    .map_err(|_| CallError::Lost)?;
                if len == 0 || len > data.len() {
                    return Err(CallError::Lost);
                }
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
                    .map_err(|_| CallError::Lost)?;
                // Netlink pads each message to 4 bytes.
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(c) => Err(CallError::Nl(-c.get())),
                            None => Ok(got),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(got),
                    NetlinkPayload::InnerMessage(inner) => {
                        got.push(inner);
                        if reply == Reply::One {
                            return Ok(got);
                        }
                    }
                    NetlinkPayload::Overrun(_) => return Err(CallError::Lost),
                    _ => {}
                }
            }
        }
    }

    /// A change: sent with `NLM_F_ACK`, done when the kernel acknowledges it.
    fn change(
        &mut self,
        msg: RouteNetlinkMessage,
        extra: u16,
    ) -> std::result::Result<(), CallError> {
        self.call(msg, NLM_F_REQUEST | NLM_F_ACK | extra, Reply::Ack)
            .map(|_| ())
    }

    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, CallError> {
        self.call(msg, NLM_F_REQUEST | NLM_F_DUMP, Reply::Dump)
    }

    fn ifindex(&mut self, name: &str) -> Result<u32> {
        if let Some(i) = self.index.get(name) {
            return Ok(*i);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let got = self
            .call(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST, Reply::One)
            .map_err(|e| nl_err(Op::Read, format!("looking up {name}"), e))?;
        let index = link_messages(&got)
            .next()
            .map(|l| l.header.index)
            .ok_or_else(|| Error {
                op: Op::Read,
                what: format!("looking up {name}"),
                errno: Some(libc::ENODEV),
                lost: false,
            })?;
        self.index.insert(name.to_string(), index);
        Ok(index)
    }

    /// Runs one link step.
    pub fn run(&mut self, step: &Step) -> Result<()> {
        let res = match step {
            Step::CreateVlan {
                name,
                parent,
                vid,
                mtu,
            } => {
                let parent = self.ifindex(parent)?;
                let mut b = LinkVlan::new(name, parent, *vid);
                if let Some(m) = mtu {
                    b = b.mtu(*m);
                }
                self.index.remove(name);
                self.change(
                    RouteNetlinkMessage::NewLink(b.build()),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            Step::SetAlias { name, .. }
            | Step::SetMtu { name, .. }
            | Step::SetUp { name }
            | Step::SetDown { name } => {
                let msg = link_change(step, self.ifindex(name)?);
                self.change(RouteNetlinkMessage::SetLink(msg), 0)
            }
            Step::AddAddr { name, addr } => {
                let msg = addr_message(self.ifindex(name)?, addr);
                self.change(
                    RouteNetlinkMessage::NewAddress(msg),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            Step::DelAddr { name, addr } | Step::DelGatewayAddr { name, addr } => {
                let msg = addr_message(self.ifindex(name)?, addr);
                // Already gone is what we wanted.
                gone_is_done(
                    self.change(RouteNetlinkMessage::DelAddress(msg), 0),
                    &[libc::EADDRNOTAVAIL],
                )
            }
            Step::DeleteLink { name } => {
                // The kernel removes VLANs with their bridge: gone is done.
                let Some(i) = self.ifindex_if_there(name)? else {
                    return Ok(());
                };
                self.index.remove(name);
                let mut msg = LinkMessage::default();
                msg.header.index = i;
                gone_is_done(
                    self.change(RouteNetlinkMessage::DelLink(msg), 0),
                    &[libc::ENODEV],
                )
            }
            Step::BridgeVidAdd { bridge, vid } => {
                let msg = bridge_vid(self.ifindex(bridge)?, *vid);
                self.change(RouteNetlinkMessage::SetLink(msg), 0)
            }
            Step::BridgeVidDel { bridge, vid } => {
                let Some(i) = self.ifindex_if_there(bridge)? else {
                    return Ok(());
                };
                let msg = bridge_vid(i, *vid);
                gone_is_done(
                    self.change(RouteNetlinkMessage::DelLink(msg), 0),
                    &[libc::ENOENT, libc::ENODEV],
                )
            }
            Step::CreateDummy { name, mac } => {
                self.index.remove(name);
                let msg = rtnetlink::LinkDummy::new(name)
                    .address(mac.0.to_vec())
                    .build();
                self.change(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            }
            Step::CreateTap {
                name,
                mac,
                vnet_hdr,
                multi_queue,
            } => {
                self.index.remove(name);
                crate::tap::create(name, *vnet_hdr, *multi_queue).map_err(|e| Error {
                    op: Op::CreateTap,
                    what: step.to_string(),
                    errno: e.raw_os_error(),
                    lost: false,
                })?;
                match mac {
                    Some(m) => {
                        let set = self.ifindex(name).and_then(|i| {
                            let msg = LinkUnspec::new_with_index(i).address(m.0.to_vec()).build();
                            self.change(RouteNetlinkMessage::SetLink(msg), 0)
                                .map_err(|e| nl_err(Op::CreateTap, step.to_string(), e))
                        });
                        if let Err(e) = set {
                            // Not half made: the tap goes again (else the
                            // next run would find it unmarked, foreign).
                            let _ = self.run(&Step::DeleteLink { name: name.clone() });
                            return Err(e);
                        }
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Step::AddGatewayAddr { name, addr } => {
                let mut msg = addr_message(self.ifindex(name)?, addr);
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
                self.change(
                    RouteNetlinkMessage::NewAddress(msg),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            Step::AddRoute {
                dst,
                dev,
                protocol,
                table,
            } => {
                let msg = route_message(dst, self.ifindex(dev)?, *protocol, *table);
                self.change(
                    RouteNetlinkMessage::NewRoute(msg),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            Step::DelRoute {
                dst,
                dev,
                protocol,
                table,
            } => {
                // The kernel removes a device's routes with it: gone is done.
                let Some(i) = self.ifindex_if_there(dev)? else {
                    return Ok(());
                };
                let mut msg = route_message(dst, i, *protocol, *table);
                // Any scope: a route added by hand with another still matches.
                msg.header.scope = RouteScope::NoWhere;
                gone_is_done(
                    self.change(RouteNetlinkMessage::DelRoute(msg), 0),
                    &[libc::ESRCH, libc::ENOENT],
                )
            }
            Step::AddNeigh { dev, addr, mac } => {
                let msg = neigh_message(self.ifindex(dev)?, *addr, Some(*mac));
                self.change(
                    RouteNetlinkMessage::NewNeighbour(msg),
                    NLM_F_CREATE | NLM_F_REPLACE,
                )
            }
            Step::DelNeigh { dev, addr, .. } => {
                let Some(i) = self.ifindex_if_there(dev)? else {
                    return Ok(());
                };
                let msg = neigh_message(i, *addr, None);
                gone_is_done(
                    self.change(RouteNetlinkMessage::DelNeighbour(msg), 0),
                    &[libc::ENOENT, libc::ESRCH],
                )
            }
            other => {
                return Err(Error {
                    op: Op::Change,
                    what: format!("{other}: not a netlink step"),
                    errno: None,
                    lost: false,
                });
            }
        };
        res.map_err(|e| nl_err(Op::of(step), step.to_string(), e))
    }

    /// [`Self::ifindex`], `None` when there is no such link.
    fn ifindex_if_there(&mut self, name: &str) -> Result<Option<u32>> {
        match self.ifindex(name) {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The message that changes one attribute of link `index`, as `step` says.
fn link_change(step: &Step, index: u32) -> LinkMessage {
    let b = LinkUnspec::new_with_index(index);
    match step {
        // An empty alias is how the kernel is told to drop it.
        Step::SetAlias { alias, .. } => b.alias(alias.clone().unwrap_or_default()),
        Step::SetMtu { mtu, .. } => b.mtu(*mtu),
        Step::SetUp { .. } => b.up(),
        _ => b.down(),
    }
    .build()
}

fn bridge_vid(index: u32, vid: u16) -> LinkMessage {
    LinkBridgeVlan::new(index)
        .bridge_self()
        .vlan(vid, BridgeVlanInfoFlags::empty())
        .build()
}

/// A deletion that finds its object already gone (`errnos`) succeeded.
fn gone_is_done(
    res: std::result::Result<(), CallError>,
    errnos: &[i32],
) -> std::result::Result<(), CallError> {
    match res {
        Err(e) if call_errno(&e).is_some_and(|n| errnos.contains(&n)) => Ok(()),
        r => r,
    }
}

/// A netlink route socket whose receives time out, so that a lost answer
/// never blocks libvirt (which waits for the hook holding the network's lock).
fn connect() -> Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        AddressFamily as Af, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt,
    };
    let fd = socket(
        Af::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| setup_err("opening a netlink socket", std::io::Error::from(e)))?;
    let t = nix::sys::time::TimeVal::new(REQUEST_TIMEOUT.as_secs() as libc::time_t, 0);
    setsockopt(&fd, sockopt::ReceiveTimeout, &t)
        .and_then(|_| setsockopt(&fd, sockopt::SendTimeout, &t))
        .map_err(|e| {
            setup_err(
                "setting the netlink socket's timeout",
                std::io::Error::from(e),
            )
        })?;
    Ok(fd)
}

/// `DST dev INDEX proto PROTOCOL table TABLE scope link`, unicast.
fn route_message(dst: &IpNet, index: u32, protocol: u8, table: u32) -> RouteMessage {
    let mut m = match dst {
        IpNet::V4(d) => rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .build(),
        IpNet::V6(d) => rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .build(),
    };
    m.header.protocol = RouteProtocol::from(protocol);
    m.header.scope = RouteScope::Link;
    m.header.kind = RouteType::Unicast;
    m.header.table = u8::try_from(table).unwrap_or(0);
    m.attributes
        .retain(|a| !matches!(a, RouteAttribute::Table(_)));
    m.attributes.push(RouteAttribute::Table(table));
    m.attributes.push(RouteAttribute::Oif(index));
    m
}

/// A permanent neighbour entry (`mac: None` for a deletion).
fn neigh_message(index: u32, addr: IpAddr, mac: Option<Mac>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.header.kind = RouteType::Unicast;
    let dst = match addr {
        IpAddr::V4(a) => {
            m.header.family = AddressFamily::Inet;
            NeighbourAddress::Inet(a)
        }
        IpAddr::V6(a) => {
            m.header.family = AddressFamily::Inet6;
            NeighbourAddress::Inet6(a)
        }
    };
    m.attributes.push(NeighbourAttribute::Destination(dst));
    if let Some(mac) = mac {
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    }
    m
}

fn addr_message(index: u32, addr: &IpNet) -> AddressMessage {
    match addr {
        IpNet::V4(a) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a.addr(), a.prefix_len())
            .build(),
        IpNet::V6(a) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(a.addr(), a.prefix_len())
            .build(),
    }
}

impl Rtnl {
    /// Host routes (/32, /128) of every table, and every neighbour entry:
    /// what routed interfaces judge.
    pub fn observe_routes(&mut self, obs: &mut Observed) -> Result<()> {
        let read = |e| nl_err(Op::Read, "reading routes and neighbour entries", e);
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            let msgs = self
                .dump(RouteNetlinkMessage::GetRoute(req))
                .map_err(read)?;
            obs.routes.extend(msgs.iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => parse_route(r),
                _ => None,
            }));
        }
        let msgs = self
            .dump(RouteNetlinkMessage::GetNeighbour(
                NeighbourMessage::default(),
            ))
            .map_err(read)?;
        obs.neighs.extend(msgs.iter().filter_map(|m| match m {
            RouteNetlinkMessage::NewNeighbour(n) => parse_neigh(n),
            _ => None,
        }));
        Ok(())
    }

    /// Every link and address, and the own VLAN lists of filtering bridges.
    pub fn observe(&mut self) -> Result<Observed> {
        let read = |e| nl_err(Op::Read, "reading interfaces and addresses", e);
        let msgs = self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .map_err(read)?;
        let links: Vec<Link> = link_messages(&msgs).map(parse_link).collect();
        let addrs = self
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .map_err(read)?
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => parse_addr(a),
                _ => None,
            })
            .collect();
        self.index = links.iter().map(|l| (l.name.clone(), l.index)).collect();
        let mut obs = Observed {
            links,
            addrs,
            ..Observed::default()
        };
        // The bridge's own VLAN list costs a dump; only filtering bridges need it.
        if obs.links.iter().any(|l| l.vlan_filtering == Some(true)) {
            let mut req = LinkMessage::default();
            req.header.interface_family = AddressFamily::Bridge;
            req.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
            let msgs = self
                .dump(RouteNetlinkMessage::GetLink(req))
                .map_err(|e| nl_err(Op::Read, "reading bridge VLAN lists", e))?;
            for m in link_messages(&msgs) {
                let is_bridge = obs
                    .link_by_index(m.header.index)
                    .is_some_and(|l| l.vlan_filtering.is_some());
                if !is_bridge {
                    continue;
                }
                let vids: Vec<u16> = m
                    .attributes
                    .iter()
                    .filter_map(|a| match a {
                        LinkAttribute::AfSpecBridge(specs) => Some(specs),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|s| match s {
                        AfSpecBridge::VlanInfo(v) => Some(v.vid),
                        _ => None,
                    })
                    .collect();
                obs.bridge_vids.insert(m.header.index, vids);
            }
        }
        Ok(obs)
    }
}

/// The link messages among a request's answers.
fn link_messages(msgs: &[RouteNetlinkMessage]) -> impl Iterator<Item = &LinkMessage> {
    msgs.iter().filter_map(|m| match m {
        RouteNetlinkMessage::NewLink(l) => Some(l),
        _ => None,
    })
}

fn parse_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        up: m.header.flags.contains(LinkFlags::Up),
        ..Link::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::IfAlias(s) if !s.is_empty() => l.alias = Some(s.clone()),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Address(b) => l.mac = mac_of(b),
            LinkAttribute::Carrier(c) => l.carrier = Some(*c != 0),
            LinkAttribute::Link(p) => l.parent = Some(*p),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => {
                            l.kind = match k {
                                InfoKind::Vlan => LinkKind::Vlan,
                                InfoKind::Bridge => LinkKind::Bridge,
                                other => LinkKind::Other(other.to_string()),
                            }
                        }
                        LinkInfo::Data(InfoData::Vlan(v)) => {
                            l.vlan_id = v.iter().find_map(|x| match x {
                                InfoVlan::Id(id) => Some(*id),
                                _ => None,
                            })
                        }
                        LinkInfo::Data(InfoData::Bridge(b)) => {
                            l.vlan_filtering = Some(
                                b.iter()
                                    .any(|x| matches!(x, InfoBridge::VlanFiltering(true))),
                            )
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn parse_route(m: &RouteMessage) -> Option<Route> {
    let mut dst = None;
    let mut oif = None;
    let mut metric = 0;
    let mut table = u32::from(m.header.table);
    for a in &m.attributes {
        match a {
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => dst = Some(IpAddr::V6(*ip)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let dst = IpNet::new(dst?, m.header.destination_prefix_length).ok()?;
    // Only host routes: a full BGP table need not be held.
    if dst.prefix_len() != dst.max_prefix_len() || m.header.kind != RouteType::Unicast {
        return None;
    }
    Some(Route {
        dst,
        oif,
        protocol: u8::from(m.header.protocol),
        table,
        metric,
    })
}

fn parse_neigh(m: &NeighbourMessage) -> Option<Neigh> {
    let mut addr = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                addr = Some(IpAddr::V4(*ip))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                addr = Some(IpAddr::V6(*ip))
            }
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            _ => {}
        }
    }
    Some(Neigh {
        index: m.header.ifindex,
        addr: addr?,
        mac,
        permanent: m.header.state == NeighbourState::Permanent,
    })
}

fn mac_of(b: &[u8]) -> Option<Mac> {
    <[u8; 6]>::try_from(b).ok().map(Mac)
}

fn parse_addr(m: &AddressMessage) -> Option<Addr> {
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // IFA_ADDRESS otherwise. Prefer LOCAL when both are present.
    let mut addr: Option<IpAddr> = None;
    let mut noprefixroute = false;
    for a in &m.attributes {
        match a {
            AddressAttribute::Flags(f) => noprefixroute = f.contains(AddressFlags::Noprefixroute),
            AddressAttribute::Local(ip) => addr = Some(*ip),
            AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
            _ => {}
        }
    }
    let net = IpNet::new(addr?, m.header.prefix_len).ok()?;
    Some(Addr {
        index: m.header.index,
        net,
        link_scope: m.header.scope == AddressScope::Link,
        noprefixroute,
    })
}
