//! `net-hook reconcile`: apply every active configured network; tear down
//! what is marked for networks that are not active or no longer
//! configured. For after a daemon restart (hooks do not re-run) or a VLAN
//! deleted by hand.

use super::Ctx;
use crate::error::Result;
use crate::exec::{Host, System};

/// Runs everything and returns one line per network, errors included, and
/// how many networks failed.
pub fn run(cx: &Ctx, dry_run: bool) -> Result<(Vec<String>, usize)> {
    let cfg = super::load_config(cx.config)?;
    let nets = cx.libvirt.networks()?;
    let mut lines = Vec::new();
    let mut failures = 0;
    let mut keep = Vec::new();
    for name in super::configured_names(&cfg, &nets) {
        let Some(info) = nets.iter().find(|i| i.name() == name) else {
            lines.push(format!("{name}: not defined in libvirt; skipped"));
            continue;
        };
        if !info.active {
            continue;
        }
        keep.push(name.clone());
        let net = match super::resolve(&cfg, cx.config, &name, Some(info)) {
            Ok(Some((net, _))) => net,
            Ok(None) => continue,
            Err(e) => {
                failures += 1;
                lines.push(format!("{name}: {e}"));
                continue;
            }
        };
        match super::apply::apply_net(cx, &net, info, dry_run) {
            Ok(_) if dry_run => lines.push(format!("{}: planned above (dry run)", net.name)),
            Ok(a) if a.is_empty() => lines.push(format!("{}: as configured", net.name)),
            Ok(a) => lines.push(format!("{}: {}", net.name, join(&a))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{}: {e}", net.name));
            }
        }
    }
    // Leftovers: marked links whose network is not active and configured.
    let obs = System::open()?.observe(&Default::default())?;
    let orphans: Vec<String> = obs
        .owners()
        .into_iter()
        .filter(|n| !keep.contains(n))
        .collect();
    for n in orphans {
        match super::teardown::one(cx.run_dir, Some(&cfg), &n, dry_run, false) {
            Ok(_) if dry_run => lines.push(format!(
                "{n}: not active; leftovers planned above (dry run)"
            )),
            Ok(a) => lines.push(format!("{n}: not active; {}", join(&a))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{n}: {e}"));
            }
        }
    }
    Ok((lines, failures))
}

fn join(steps: &[crate::plan::Step]) -> String {
    steps
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
