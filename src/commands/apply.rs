//! `net-hook apply NETWORK`: what the hook does on `started`, for a
//! network already running (the bridge name from libvirt).

use super::{Ctx, NetInfo};
use crate::config::NetworkConfig;
use crate::error::{Error, Result};
use crate::exec::{Host, System};
use crate::log::Log;
use crate::ops;
use crate::plan::{Problem, Step};
use crate::state::{RunDir, RunOp};

pub fn run(cx: &Ctx, network: &str, dry_run: bool) -> Result<Vec<Step>> {
    let cfg = super::load_config(cx.config)?;
    let info = cx.libvirt.network(network)?;
    // Not configured anywhere is the first thing to say.
    let (net, _) = super::network_config(&cfg, cx.config, network, info.as_ref())?;
    let info = super::running(info, network)?;
    apply_net(cx, &net, &info, dry_run)
}

/// [`run`] once the network's config and libvirt's view of it (active)
/// are in hand: `reconcile` has them for every network already.
pub(crate) fn apply_net(
    cx: &Ctx,
    net: &NetworkConfig,
    info: &NetInfo,
    dry_run: bool,
) -> Result<Vec<Step>> {
    let network = net.name.as_str();
    let bridge = info.net.bridge.as_deref().ok_or_else(|| {
        Error::Refused(vec![Problem::NoBridge {
            forward_mode: info.net.forward_mode.clone(),
        }])
    })?;
    let mut host = System::open()?;
    if dry_run {
        let obs = host.observe(&ops::up_scope(net, bridge))?;
        let planned = crate::plan::plan_up(net, bridge, &info.net, &obs);
        let header = format!("bridge {bridge}, {}", ops::mode(net));
        ops::print_plan(network, "apply", &header, None, &planned);
        return planned.map(|_| vec![]).map_err(Error::Refused);
    }
    let rundir = RunDir::new(cx.run_dir);
    let _lock = rundir.lock()?;
    let mut log = Log::system_only(network, "apply");
    let res = ops::up(net, bridge, &info.net, &mut host, &rundir, &mut log);
    rundir.record(&ops::outcome(network, RunOp::Apply, &res));
    res.map(|d| d.actions)
}
