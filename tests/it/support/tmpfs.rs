//! A tmpfs mounted for a test (needs root), for a data directory that can really
//! fill up.

use std::path::Path;
use std::process::Command;

/// A tmpfs mounted on a new directory; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (`mount -o size=`); needs root.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(ok.success(), "mounting a tmpfs needs root");
        Tmpfs { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
