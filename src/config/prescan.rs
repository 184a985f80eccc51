//! The pre-scan: whether a file can name a network at all, without parsing.

/// Cheap test run before any parsing: false means the text cannot configure
/// `network`, so the hook may exit at once. It looks for the name as a whole
/// key token; anything it cannot rule out (escapes, odd names, non-ASCII
/// neighbours) returns true and the caller parses for real.
pub fn might_mention(text: &mut impl std::io::Read, network: &str) -> std::io::Result<bool> {
    scan(text, network, 16 * 1024)
}

/// [`might_mention`] reading `chunk` bytes at a time. A window holds the chunk plus
/// the previous one's last `name + 1` bytes, so a name split across reads is
/// still seen with the byte before it.
pub(super) fn scan(
    r: &mut impl std::io::Read,
    network: &str,
    chunk: usize,
) -> std::io::Result<bool> {
    let name = network.as_bytes();
    if name.is_empty()
        || name
            .iter()
            .any(|&b| matches!(b, b'"' | b'\'' | b'\\') || b.is_ascii_control())
    {
        return Ok(true);
    }
    let keep = name.len() + 1;
    let mut window = vec![0; keep + chunk];
    let finder = memchr::memmem::Finder::new(name);
    // `held` bytes carried over; `from_start`: window[0] is the file's first.
    let (mut held, mut from_start) = (0, true);
    loop {
        let n = match r.read(&mut window[held..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (len, eof) = (held + n, n == 0);
        // Escapes could spell any name: parse for real.
        if memchr::memchr(b'\\', &window[held..len]).is_some() {
            return Ok(true);
        }
        for i in finder.find_iter(&window[..len]) {
            let after = window.get(i + name.len()).filter(|_| i + name.len() < len);
            if after.is_none() && !eof {
                break; // its next byte comes with the next read
            }
            if i == 0 && !from_start {
                continue; // judged in the previous window
            }
            let before = i.checked_sub(1).map(|j| window[j]);
            if before_ok(before) && after_ok(after.copied()) {
                return Ok(true);
            }
        }
        if eof {
            return Ok(false);
        }
        let start = len.saturating_sub(keep);
        window.copy_within(start..len, 0);
        held = len - start;
        from_start &= start == 0;
    }
}

// Bytes that may stand next to a bare or quoted key. Non-ASCII bytes could
// be Unicode whitespace: do not rule them out.
fn before_ok(b: Option<u8>) -> bool {
    b.is_none_or(|b| matches!(b, b'.' | b'[' | b'"' | b'\'' | b'{' | b',') || is_space(b))
}

fn after_ok(b: Option<u8>) -> bool {
    b.is_none_or(|b| matches!(b, b'.' | b']' | b'"' | b'\'' | b'=') || is_space(b))
}

fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b || !b.is_ascii()
}
