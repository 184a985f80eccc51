//! Persistent taps, made as `ip tuntap add` makes them: `TUNSETIFF` on
//! /dev/net/tun, then `TUNSETPERSIST` (rtnetlink cannot create tun devices).

use std::os::fd::AsRawFd;

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
/// Fail (EBUSY) rather than attach to a tap that appeared meanwhile.
const IFF_TUN_EXCL: libc::c_short = 0x8000u16 as libc::c_short;

nix::ioctl_write_int!(tun_set_iff, b'T', 202);
nix::ioctl_write_int!(tun_set_persist, b'T', 203);

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Creates the persistent tap `name`. Its flags are those QEMU's attach
/// will ask for: a multi-queue mismatch makes the attach fail.
pub fn create(name: &str, vnet_hdr: bool, multi_queue: bool) -> std::io::Result<()> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL,
        _pad: [0; 22],
    };
    if vnet_hdr {
        req.flags |= IFF_VNET_HDR;
    }
    if multi_queue {
        req.flags |= IFF_MULTI_QUEUE;
    }
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let fd = tun.as_raw_fd();
    // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `req` is
    // (name, flags, padded to the kernel's size); TUNSETPERSIST takes an int.
    unsafe {
        tun_set_iff(fd, &mut req as *mut IfReq as libc::c_ulong)?;
        tun_set_persist(fd, 1)?;
    }
    Ok(())
}
