//! Reading the file, and refusing one that somebody other than root could
//! have written.

use std::path::Path;

use toml::de::DeTable;

use super::prescan::might_mention;
use super::{Error, Result};

/// The config file's text, and why the hook must not trust it, if so.
pub enum Loaded {
    /// No config file: nothing is managed.
    Missing,
    /// [`load_if_mentions`] only: the file cannot configure the network.
    NotMentioned,
    Text {
        text: String,
        insecure: Option<Error>,
    },
}

/// Reads the config and checks that nobody but root could have written it:
/// the hook runs as root and acts on what it says. The check applies only
/// when we are root ourselves; an unprivileged run can do no harm.
pub fn load(path: &Path) -> Result<Loaded> {
    load_inner(path, None)
}

/// [`load`] for the hook: first streams the file through the pre-scan
/// ([`might_mention`]) and stops there if it cannot name `network`, the
/// common case on a busy host. That path neither keeps the text nor
/// validates UTF-8, so its cost does not grow with the number of networks.
pub fn load_if_mentions(path: &Path, network: &str) -> Result<Loaded> {
    load_inner(path, Some(network))
}

fn load_inner(path: &Path, prescan: Option<&str>) -> Result<Loaded> {
    use std::io::{Read, Seek};
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let root = nix::unistd::geteuid().is_root();
    let (mut file, insecure) = match open_checked(path, root) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(Loaded::Missing),
        Err(e) => return Err(read_err(e)),
    };
    if let Some(network) = prescan {
        // An insecure file that cannot name the network is equally not ours.
        if !might_mention(&mut file, network).map_err(read_err)? {
            return Ok(Loaded::NotMentioned);
        }
        file.rewind().map_err(read_err)?;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    Ok(Loaded::Text { text, insecure })
}

const FIX_REPLACE: &str = "put the file itself there (root-owned, mode 0644)";

/// Opens the config relative to its directory, both on descriptors, so the
/// checks judge exactly what is read (no check-then-open race). As root
/// (`check`) the file must be a regular file, not a symlink, and neither it
/// nor its directory writable by anyone but root; the verdict on
/// ownership and mode comes back with the open file. `None`: no such file.
fn open_checked(
    path: &Path,
    check: bool,
) -> std::io::Result<Option<(std::fs::File, Option<Error>)>> {
    use nix::errno::Errno;
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, fstat};
    let io = |e: Errno| std::io::Error::from_raw_os_error(e as i32);
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dfd = match open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    if check {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = match openat(&dfd, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) if check => {
            // Read through it only to see whether it names the network (an
            // untrusted file that cannot is equally not ours); never trusted.
            let fd = openat(&dfd, name, flags - OFlag::O_NOFOLLOW, Mode::empty()).map_err(io)?;
            let why = Error::Insecure {
                path: path.to_path_buf(),
                why: "it is a symlink, which net-hook does not follow as root".into(),
                fix: FIX_REPLACE,
            };
            return Ok(Some((std::fs::File::from(fd), Some(why))));
        }
        Err(e) => return Err(io(e)),
    };
    let mut insecure = None;
    if check {
        let st = fstat(&fd).map_err(io)?;
        insecure = if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            Some(Error::Insecure {
                path: path.to_path_buf(),
                why: "not a regular file".into(),
                fix: FIX_REPLACE,
            })
        } else {
            check_secure(path, st.st_uid, st.st_mode).err()
        };
        if insecure.is_none() {
            // Whoever can write the directory can replace the file.
            let dst = fstat(&dfd).map_err(io)?;
            insecure = check_secure(dir, dst.st_uid, dst.st_mode).err();
        }
    }
    Ok(Some((std::fs::File::from(fd), insecure)))
}

/// [`load`] for commands that need the file: missing or insecure is an error.
pub fn read_file(path: &Path) -> Result<String> {
    match load(path)? {
        Loaded::Missing | Loaded::NotMentioned => Err(Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
        Loaded::Text {
            insecure: Some(e), ..
        } => Err(e),
        Loaded::Text { text, .. } => Ok(text),
    }
}

/// Best effort, for error paths: does the file say `strict = true` for
/// `network`, even if it is otherwise invalid?
pub fn strict_hint(text: &str, network: &str) -> bool {
    let Ok(root) = DeTable::parse(text) else {
        return false;
    };
    root.get_ref()
        .get("networks")
        .and_then(|n| n.get_ref().get(network))
        .and_then(|n| n.get_ref().get("strict"))
        .and_then(|s| s.get_ref().as_bool())
        .unwrap_or(false)
}

pub fn check_secure(path: &Path, uid: u32, mode: u32) -> Result<()> {
    let why = if uid != 0 {
        format!("owned by uid {uid}, not root")
    } else if mode & 0o022 != 0 {
        format!("writable by group or others (mode {:o})", mode & 0o7777)
    } else {
        return Ok(());
    };
    Err(Error::Insecure {
        path: path.to_path_buf(),
        why,
        fix: "fix with `chown root:root` and `chmod go-w`",
    })
}
