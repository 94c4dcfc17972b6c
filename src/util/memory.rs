//! The process's memory: what the kernel says it takes (`/proc/self/status`), and
//! turning off transparent huge pages, which multiply a small heap's footprint.

/// Turns transparent huge pages off for this process. The allocator reserves its
/// arena in large aligned blocks; with THP (`always`, or `madvise` once it asks
/// for them) a few bytes touched in a block make a 2 MiB page resident, and an
/// idle wagate took 70 MB instead of 35. Call it first thing in `main`: pages
/// faulted before stay as they are. Returns whether the kernel accepted it.
pub fn disable_transparent_huge_pages() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
}

/// Resident and peak resident memory of this process in bytes (`VmRSS`,
/// `VmHWM`), when `/proc` can be read.
pub fn resident() -> Option<Resident> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The machine's physical memory in bytes.
pub fn physical() -> Option<u64> {
    // SAFETY: sysconf reads a system value and touches no memory of ours.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    pub now: u64,
    pub peak: u64,
}

fn parse_status(text: &str) -> Option<Resident> {
    let kib = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let value = line[name.len()..].trim().strip_suffix("kB")?.trim();
        value.parse::<u64>().ok().map(|n| n * 1024)
    };
    Some(Resident {
        now: kib("VmRSS:")?,
        peak: kib("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak_from_proc_status() {
        let text = "Name:\twagate\nVmHWM:\t  72860 kB\nVmRSS:\t   32036 kB\nThreads:\t16\n";
        assert_eq!(
            parse_status(text),
            Some(Resident {
                now: 32036 * 1024,
                peak: 72860 * 1024
            })
        );
        assert_eq!(parse_status("VmRSS:\t1 kB\n"), None);
        assert!(resident().is_some_and(|r| r.now > 0 && r.peak >= r.now));
    }
}
