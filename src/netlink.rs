//! The doing half: reads the host and runs plan steps over rtnetlink.
//!
//! The socket is `SOCK_RAW`, not the `SOCK_DGRAM` netlink-sys opens by
//! default: for netlink the two behave the same, but Debian's libvirtd
//! AppArmor profile allows only `network netlink raw` to hooks it confines.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    AfSpecBridge, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind, InfoVlan, LinkAttribute,
    LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::sys::TokioSocket;
use rtnetlink::{AddressMessageBuilder, Handle, LinkBridgeVlan, LinkUnspec, LinkVlan};

use crate::model::{Addr, Link, LinkKind, Observed};
use crate::plan::Step;

/// What a netlink request was for, to pick the advice for its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Setup,
    Read,
    CreateVlan,
    SetMtu,
    Change,
}

impl Op {
    fn of(step: &Step) -> Op {
        match step {
            Step::CreateVlan { .. } => Op::CreateVlan,
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
        (Op::CreateVlan, Some(libc::EEXIST)) => {
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

pub struct Rtnl {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    /// The connection task: it ends when a send or receive fails, and with
    /// it every request in flight, whose streams then end as if answered.
    conn: tokio::task::JoinHandle<()>,
    /// The last request was lost: reconnect before the next.
    lost: bool,
    index: HashMap<String, u32>,
}

/// Why a request failed: the kernel said so, or its answer was lost.
enum CallError {
    Nl(rtnetlink::Error),
    Lost,
}

fn nl_err(op: Op, what: impl Into<String>, e: CallError) -> Error {
    match e {
        CallError::Nl(e) => Error {
            op,
            what: what.into(),
            errno: errno_of(&e),
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
        CallError::Nl(e) => errno_of(e),
        CallError::Lost => None,
    }
}

impl Rtnl {
    /// A current-thread runtime and one netlink socket: built only when a
    /// managed network needs them.
    pub fn open() -> Result<Rtnl> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| setup_err("starting the netlink runtime", e))?;
        let (handle, conn) = connect(&rt)?;
        Ok(Rtnl {
            rt,
            handle,
            conn,
            lost: false,
            index: HashMap::new(),
        })
    }

    /// Runs one request, built by `f` on the current connection. A request
    /// whose connection failed, or that got no answer in time, is `Lost`
    /// even if its stream ended cleanly (a change's stream ends without an
    /// error when the socket dies, which would read as success); the next
    /// request gets a new connection.
    fn call<T, Fut>(&mut self, f: impl FnOnce(Handle) -> Fut) -> std::result::Result<T, CallError>
    where
        Fut: Future<Output = std::result::Result<T, rtnetlink::Error>>,
    {
        if self.lost || self.conn.is_finished() {
            let (h, c) = connect(&self.rt).map_err(|_| CallError::Lost)?;
            self.conn.abort();
            (self.handle, self.conn, self.lost) = (h, c, false);
        }
        let fut = f(self.handle.clone());
        let res = self
            .rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await });
        match res {
            Ok(r) if !self.conn.is_finished() => r.map_err(CallError::Nl),
            _ => {
                self.lost = true;
                Err(CallError::Lost)
            }
        }
    }

    fn ifindex(&mut self, name: &str) -> Result<u32> {
        if let Some(i) = self.index.get(name) {
            return Ok(*i);
        }
        let owned = name.to_string();
        let msg = self
            .call(|h| async move { h.link().get().match_name(owned).execute().try_next().await })
            .map_err(|e| nl_err(Op::Read, format!("looking up {name}"), e))?;
        let index = msg.map(|m| m.header.index).ok_or_else(|| Error {
            op: Op::Read,
            what: format!("looking up {name}"),
            errno: Some(libc::ENODEV),
            lost: false,
        })?;
        self.index.insert(name.to_string(), index);
        Ok(index)
    }

    async fn set(handle: Handle, msg: LinkMessage) -> std::result::Result<(), rtnetlink::Error> {
        handle.link().set(msg).execute().await
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
                let msg = b.build();
                self.call(|h| async move { h.link().add(msg).execute().await })
            }
            Step::SetAlias { name, .. }
            | Step::SetMtu { name, .. }
            | Step::SetUp { name }
            | Step::SetDown { name } => {
                let msg = link_change(step, self.ifindex(name)?);
                self.call(|h| Self::set(h, msg))
            }
            Step::AddAddr { name, addr } => {
                let i = self.ifindex(name)?;
                let (a, len) = (addr.addr(), addr.prefix_len());
                self.call(|h| async move { h.address().add(i, a, len).execute().await })
            }
            Step::DelAddr { name, addr } => {
                let msg = addr_message(self.ifindex(name)?, addr);
                // Already gone is what we wanted.
                gone_is_done(
                    self.call(|h| async move { h.address().del(msg).execute().await }),
                    &[libc::EADDRNOTAVAIL],
                )
            }
            Step::DeleteLink { name } => {
                // The kernel removes VLANs with their bridge: gone is done.
                let Some(i) = self.ifindex_if_there(name)? else {
                    return Ok(());
                };
                self.index.remove(name);
                gone_is_done(
                    self.call(|h| async move { h.link().del(i).execute().await }),
                    &[libc::ENODEV],
                )
            }
            Step::BridgeVidAdd { bridge, vid } => {
                let msg = bridge_vid(self.ifindex(bridge)?, *vid);
                self.call(|h| Self::set(h, msg))
            }
            Step::BridgeVidDel { bridge, vid } => {
                let Some(i) = self.ifindex_if_there(bridge)? else {
                    return Ok(());
                };
                let msg = bridge_vid(i, *vid);
                gone_is_done(
                    self.call(|h| async move { h.link().del_with_message(msg).execute().await }),
                    &[libc::ENOENT, libc::ENODEV],
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

/// One netlink socket and its connection task on `rt`.
fn connect(rt: &tokio::runtime::Runtime) -> Result<(Handle, tokio::task::JoinHandle<()>)> {
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Netlink,
        nix::sys::socket::SockType::Raw,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        nix::sys::socket::SockProtocol::NetlinkRoute,
    )
    .map_err(|e| setup_err("opening a netlink socket", std::io::Error::from(e)))?;
    Ok(rt.block_on(async {
        // SAFETY: `fd` is a fresh netlink socket whose ownership we pass on.
        let socket = unsafe { TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        (handle, tokio::spawn(conn))
    }))
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
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
    /// Every link and address, and the own VLAN lists of filtering bridges.
    pub fn observe(&mut self) -> Result<Observed> {
        let (links, addrs) = self
            .call(|h| async move {
                let links: Vec<LinkMessage> = h.link().get().execute().try_collect().await?;
                let addrs: Vec<AddressMessage> = h.address().get().execute().try_collect().await?;
                Ok::<_, rtnetlink::Error>((links, addrs))
            })
            .map_err(|e| nl_err(Op::Read, "reading interfaces and addresses", e))?;
        let links: Vec<Link> = links.iter().map(parse_link).collect();
        let addrs = addrs.iter().filter_map(parse_addr).collect();
        self.index = links.iter().map(|l| (l.name.clone(), l.index)).collect();
        let mut obs = Observed {
            links,
            addrs,
            ..Observed::default()
        };
        // The bridge's own VLAN list costs a dump; only filtering bridges need it.
        if obs.links.iter().any(|l| l.vlan_filtering == Some(true)) {
            let msgs: Vec<LinkMessage> = self
                .call(|h| async move {
                    h.link()
                        .get()
                        .set_filter_mask(AddressFamily::Bridge, vec![LinkExtentMask::Brvlan])
                        .execute()
                        .try_collect()
                        .await
                })
                .map_err(|e| nl_err(Op::Read, "reading bridge VLAN lists", e))?;
            for m in &msgs {
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

fn parse_addr(m: &AddressMessage) -> Option<Addr> {
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // IFA_ADDRESS otherwise. Prefer LOCAL when both are present.
    let mut addr: Option<IpAddr> = None;
    for a in &m.attributes {
        match a {
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
    })
}
