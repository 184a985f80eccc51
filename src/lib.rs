//! net-hook: a libvirt network hook that owns VLAN sub-interfaces (and their
//! addresses, firewalld zones and un-NAT exemption) on libvirt bridges.
//! parse (config, hookdata) -> observe (model) -> plan (pure) -> exec (one
//! executor, one undo journal) over netlink and the firewall drivers.

pub mod cli;
pub mod commands;
pub mod config;
pub mod domaindata;
pub mod error;
pub mod exec;
pub mod firewall;
pub mod hook;
pub mod hookdata;
pub mod install;
pub mod log;
pub mod model;
pub mod netlink;
pub mod ops;
pub mod plan;
pub mod qemu_hook;
pub mod routed;
pub mod state;
pub mod sysctl;
pub mod tap;
#[cfg(test)]
mod testutil;
