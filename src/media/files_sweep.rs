//! The sweep of the media store: temporary files (local) and stored files no
//! entry names (orphans: a crash between a file's write and its journal record,
//! or between a deletion's record and the removal).

use std::io;
use std::time::{Duration, SystemTime};

use super::{io_at, sync_dir, valid_name, Backend, FileError, MediaFiles, SweepReport};

impl MediaFiles {
    /// Removes `*.tmp` files and stored files that `known` does not recognise, if
    /// they are at least `min_age` old (pass zero at start, before any writer runs;
    /// on a timer, a margin longer than one download so work in flight is spared).
    /// Other entries are left alone. Logs what it did. In a bucket: the objects
    /// directly under the prefix, aged by their last-modified time.
    pub fn sweep_temp_and_orphans(
        &self,
        known: impl Fn(&str) -> bool,
        min_age: Duration,
    ) -> Result<SweepReport, FileError> {
        let report = match &self.backend {
            Backend::Local => self.sweep_local(known, min_age)?,
            Backend::Objects(_) => self.sweep_objects(known, min_age)?,
        };
        tracing::info!(
            temp_removed = report.temp_removed.len(),
            orphans_removed = report.orphans_removed.len(),
            kept = report.kept,
            skipped_recent = report.skipped_recent,
            ignored = report.ignored.len(),
            errors = report.errors,
            store = %self.location(),
            "media sweep"
        );
        for name in &report.orphans_removed {
            tracing::info!(file = %name, "media sweep removed an orphan file");
        }
        Ok(report)
    }

    fn sweep_objects(
        &self,
        known: impl Fn(&str) -> bool,
        min_age: Duration,
    ) -> Result<SweepReport, FileError> {
        let Backend::Objects(objects) = &self.backend else {
            unreachable!("called for a bucket only")
        };
        let mut report = SweepReport::default();
        let now = SystemTime::now();
        for (name, modified) in objects.list()? {
            if !valid_name(&name) {
                report.ignored.push(name);
                continue;
            }
            if known(&name) {
                report.kept += 1;
                continue;
            }
            let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
            if age < min_age {
                report.skipped_recent += 1;
                continue;
            }
            match objects.delete(&name) {
                Ok(_) => report.orphans_removed.push(name),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "media sweep: cannot remove");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    fn sweep_local(
        &self,
        known: impl Fn(&str) -> bool,
        min_age: Duration,
    ) -> Result<SweepReport, FileError> {
        let mut report = SweepReport::default();
        let now = SystemTime::now();
        let entries = std::fs::read_dir(&self.dir).map_err(io_at(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_at(&self.dir))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                report
                    .ignored
                    .push(entry.file_name().to_string_lossy().into_owned());
                continue;
            };
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            let temp = file_name.strip_suffix(".tmp");
            let orphan = match temp {
                Some(stem) if is_file && valid_name(stem) => false,
                None if is_file && valid_name(&file_name) => {
                    if known(&file_name) {
                        report.kept += 1;
                        continue;
                    }
                    true
                }
                _ => {
                    report.ignored.push(file_name);
                    continue;
                }
            };
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            if age < min_age {
                report.skipped_recent += 1;
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) if orphan => report.orphans_removed.push(file_name),
                Ok(()) => report.temp_removed.push(file_name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %file_name, error = %e, "media sweep: cannot remove");
                    report.errors += 1;
                }
            }
        }
        if !report.temp_removed.is_empty() || !report.orphans_removed.is_empty() {
            sync_dir(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok(report)
    }
}
