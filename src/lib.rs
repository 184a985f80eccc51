//! net-hook: a libvirt network hook that owns VLAN sub-interfaces (and their
//! addresses) on libvirt bridges. parse -> plan (pure) -> apply (netlink).

pub mod apply;
pub mod cli;
pub mod companion;
pub mod config;
pub mod error;
pub mod firewall;
pub mod hook;
pub mod hookdata;
pub mod install;
pub mod log;
pub mod model;
pub mod netlink;
pub mod ops;
pub mod plan;
pub mod state;
#[cfg(test)]
mod testutil;
