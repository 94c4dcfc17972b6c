//! Scheduling priority of background threads: processing the journal yields the CPU
//! to the threads that acknowledge webhooks whenever both want it (a delivery is
//! safe once journaled; what comes after can wait for a burst to pass).

/// Sets the calling thread's nice value to `nice` (0: left as it is). Threads it
/// starts afterwards inherit it. Lowering one's own priority needs no privilege.
pub fn lower_this_thread(nice: i32) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    // SAFETY: two syscalls about the calling thread; no memory is shared.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The calling thread's nice value.
pub fn this_thread() -> i32 {
    // SAFETY: as above. -1 is also a valid answer; errno is not needed for our use.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_and_its_children_are_lowered() {
        let before = this_thread();
        let (own, child) = std::thread::spawn(move || {
            lower_this_thread(before + 5).unwrap();
            let child = std::thread::spawn(this_thread).join().unwrap();
            (this_thread(), child)
        })
        .join()
        .unwrap();
        assert_eq!((own, child), (before + 5, before + 5));
        assert_eq!(this_thread(), before, "the caller's thread is untouched");
        assert!(lower_this_thread(0).is_ok());
        assert_eq!(this_thread(), before);
    }
}
