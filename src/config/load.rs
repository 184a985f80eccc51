//! Reading the file, and refusing one that somebody other than root could
//! have written.

use std::os::unix::fs::MetadataExt;
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
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(read_err(e)),
    };
    if let Some(network) = prescan {
        // An insecure file that cannot name the network is equally not ours.
        if !might_mention(&mut file, network).map_err(read_err)? {
            return Ok(Loaded::NotMentioned);
        }
        file.rewind().map_err(read_err)?;
    }
    let mut insecure = None;
    if nix::unistd::geteuid().is_root() {
        let meta = file.metadata().map_err(read_err)?;
        insecure = check_secure(path, meta.uid(), meta.mode()).err();
        if insecure.is_none()
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            // Whoever can write the directory can replace the file.
            let dmeta = std::fs::metadata(dir).map_err(read_err)?;
            insecure = check_secure(dir, dmeta.uid(), dmeta.mode()).err();
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    Ok(Loaded::Text { text, insecure })
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
    })
}
