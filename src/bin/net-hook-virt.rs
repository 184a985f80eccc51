//! The half of net-hook that links libvirt: the companion commands that ask
//! libvirt about networks (`check`, `status`, `apply`, `reconcile`). `net-hook`
//! execs this binary for them, so the hook itself never loads libvirt.

use std::process::ExitCode;
use std::time::Duration;

use net_hook::cli::Companion;
use net_hook::commands::firewalld_reload as fr;

use net_hook::commands::routed::DomInfo;
use net_hook::commands::{Error, Libvirt, NetInfo};
use net_hook::error::Result;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::network::Network;

struct Virt {
    conn: Connect,
    uri: String,
}

fn err(uri: &str, what: &str, e: virt::error::Error) -> net_hook::error::Error {
    Error::Libvirt {
        uri: uri.into(),
        what: what.into(),
        msg: e.message().to_string(),
    }
    .into()
}

impl Virt {
    fn info(&self, n: &Network) -> Result<NetInfo> {
        let e = |what: &str| {
            let uri = self.uri.clone();
            let what = what.to_string();
            move |e| err(&uri, &what, e)
        };
        let xml = n.get_xml_desc(0).map_err(e("reading the network XML"))?;
        let active = n
            .is_active()
            .map_err(e("asking whether the network is active"))?;
        let persistent = n
            .is_persistent()
            .map_err(e("asking whether the network is persistent"))?;
        let autostart = n.get_autostart().map_err(e("reading autostart"))?;
        let mut info = NetInfo::from_xml(&xml, active, persistent, autostart)?;
        // The live bridge name, as `virsh net-info` shows it.
        if active && let Ok(b) = n.get_bridge_name() {
            info.net.bridge = Some(b);
        }
        Ok(info)
    }
}

impl Libvirt for Virt {
    fn network(&self, name: &str) -> Result<Option<NetInfo>> {
        match Network::lookup_by_name(&self.conn, name) {
            Ok(n) => self.info(&n).map(Some),
            Err(e) if e.code() == ErrorNumber::NoNetwork => Ok(None),
            Err(e) => Err(err(&self.uri, &format!("looking up network {name:?}"), e)),
        }
    }

    fn networks(&self) -> Result<Vec<NetInfo>> {
        let list = self
            .conn
            .list_all_networks(0)
            .map_err(|e| err(&self.uri, "listing networks", e))?;
        list.iter().map(|n| self.info(n)).collect()
    }

    fn domain(&self, name: &str) -> Result<Option<DomInfo>> {
        match Domain::lookup_by_name(&self.conn, name) {
            Ok(d) => self.dom_info(&d).map(Some),
            Err(e) if e.code() == ErrorNumber::NoDomain => Ok(None),
            Err(e) => Err(err(&self.uri, &format!("looking up domain {name:?}"), e)),
        }
    }

    fn domains(&self) -> Result<Vec<DomInfo>> {
        let list = self
            .conn
            .list_all_domains(0)
            .map_err(|e| err(&self.uri, "listing domains", e))?;
        list.iter().map(|d| self.dom_info(d)).collect()
    }
}

impl Virt {
    /// The live XML of a running domain (its taps, MACs), else the inactive one.
    fn dom_info(&self, d: &Domain) -> Result<DomInfo> {
        let active = d
            .is_active()
            .map_err(|e| err(&self.uri, "asking whether the domain is running", e))?;
        let xml = d
            .get_xml_desc(0)
            .map_err(|e| err(&self.uri, "reading the domain XML", e))?;
        Ok(DomInfo {
            xml: net_hook::domaindata::parse(&xml)?,
            active,
        })
    }
}

fn connect(uri: &str) -> Result<Box<dyn Libvirt>> {
    // libvirt's default handler prints every error to stderr; ours say more.
    virt::error::clear_error_callback();
    let conn = Connect::open(Some(uri)).map_err(|e| Error::Connect {
        uri: uri.into(),
        msg: e.message().to_string(),
    })?;
    Ok(Box::new(Virt {
        conn,
        uri: uri.to_string(),
    }))
}

/// firewalld's signals on the system bus, through zbus on a
/// current-thread runtime (the library's netlink uses the same tokio).
struct Firewalld {
    rt: tokio::runtime::Runtime,
    stream: futures_util::stream::BoxStream<'static, zbus::Result<zbus::Message>>,
}

const FIREWALLD: &str = "org.fedoraproject.FirewallD1";

fn bus_err(e: impl std::fmt::Display) -> fr::Error {
    fr::Error::Bus(e.to_string())
}

fn firewalld_events() -> std::result::Result<Box<dyn fr::Events>, fr::Error> {
    use futures_util::StreamExt;
    use zbus::message::Type;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(bus_err)?;
    let stream = rt.block_on(async {
        let conn = zbus::Connection::system().await.map_err(bus_err)?;
        let reloaded = zbus::MatchRule::builder()
            .msg_type(Type::Signal)
            .interface(FIREWALLD)
            .map_err(bus_err)?
            .member("Reloaded")
            .map_err(bus_err)?
            .build();
        let owner = zbus::MatchRule::builder()
            .msg_type(Type::Signal)
            .sender("org.freedesktop.DBus")
            .map_err(bus_err)?
            .interface("org.freedesktop.DBus")
            .map_err(bus_err)?
            .member("NameOwnerChanged")
            .map_err(bus_err)?
            .add_arg(FIREWALLD)
            .map_err(bus_err)?
            .build();
        let a = zbus::MessageStream::for_match_rule(reloaded, &conn, None)
            .await
            .map_err(bus_err)?;
        let b = zbus::MessageStream::for_match_rule(owner, &conn, None)
            .await
            .map_err(bus_err)?;
        Ok::<_, fr::Error>(futures_util::stream::select(a, b).boxed())
    })?;
    Ok(Box::new(Firewalld { rt, stream }))
}

impl fr::Events for Firewalld {
    fn next(
        &mut self,
        timeout: Option<Duration>,
    ) -> std::result::Result<Option<fr::Event>, fr::Error> {
        use futures_util::StreamExt;
        loop {
            let next = self.stream.next();
            let msg = match timeout {
                None => self.rt.block_on(next),
                // The timer must be made inside the runtime: tokio's Sleep
                // panics when created outside one.
                Some(t) => match self
                    .rt
                    .block_on(async { tokio::time::timeout(t, next).await })
                {
                    Ok(m) => m,
                    Err(_) => return Ok(None),
                },
            };
            let msg = match msg {
                None => return Err(bus_err("the connection closed")),
                Some(m) => m.map_err(bus_err)?,
            };
            let header = msg.header();
            match header.member().map(|m| m.as_str()) {
                Some("Reloaded") => return Ok(Some(fr::Event::Reloaded)),
                Some("NameOwnerChanged") => {
                    // (name, old owner, new owner): an empty new owner is a stop.
                    let Ok((_, _, new)) = msg.body().deserialize::<(String, String, String)>()
                    else {
                        continue;
                    };
                    return Ok(Some(if new.is_empty() {
                        fr::Event::Stopped
                    } else {
                        fr::Event::Started
                    }));
                }
                _ => continue,
            }
        }
    }
}

fn main() -> ExitCode {
    let companion = Companion {
        connect: &connect,
        firewalld_events: &firewalld_events,
    };
    ExitCode::from(net_hook::cli::main(
        std::env::args_os().collect(),
        Some(&companion),
    ))
}
