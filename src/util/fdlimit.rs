//! The process's open-file limit: connections must leave room for the journal,
//! sled and media files.

/// The soft `RLIMIT_NOFILE`, when it can be read.
pub fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// File descriptors kept for everything but connections.
pub const RESERVED_FDS: u64 = 128;

/// `wanted` connections, or fewer when the open-file limit would not hold them.
pub fn connection_cap(wanted: usize, limit: Option<u64>) -> usize {
    match limit {
        Some(l) => wanted.min(l.saturating_sub(RESERVED_FDS).max(1) as usize),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_files() {
        assert_eq!(connection_cap(512, Some(65536)), 512);
        assert_eq!(connection_cap(512, Some(512)), 384);
        assert_eq!(connection_cap(512, Some(100)), 1);
        assert_eq!(connection_cap(512, None), 512);
    }
}
