//! The half of net-hook that links libvirt: the companion commands that ask
//! libvirt about networks (`check`, `status`, `apply`, `reconcile`). `net-hook`
//! execs this binary for them, so the hook itself never loads libvirt.

use std::process::ExitCode;

use net_hook::commands::{Error, Libvirt, NetInfo};
use net_hook::error::Result;
use virt::connect::Connect;
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

fn main() -> ExitCode {
    ExitCode::from(net_hook::cli::main(
        std::env::args_os().collect(),
        Some(&connect),
    ))
}
