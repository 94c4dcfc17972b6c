//! What ACME keeps on disk, under `<data>/acme/<CA host>/` (one directory per CA, so
//! a switch from a staging to a production directory starts clean):
//!
//! - `account.json`: the account's key and URL (instant-acme's credentials), with
//!   the directory and contact it was made for;
//! - `certificate.pem`: the certificate's private key, then its chain, in one file so
//!   that a renewal replaces both at once.
//!
//! Both are mode 0600, written to a temporary name, fsynced and renamed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AcmeError;
use crate::util::fs::write_private_atomic;

#[derive(Serialize, Deserialize)]
pub struct StoredAccount {
    pub directory: String,
    pub email: Option<String>,
    /// instant-acme's `AccountCredentials`, kept as JSON (that type is opaque).
    pub credentials: serde_json::Value,
}

/// The files of one CA directory.
#[derive(Debug, Clone)]
pub struct AcmeFiles {
    dir: PathBuf,
}

/// `https://acme-v02.api.letsencrypt.org/directory` -> `acme-v02.api.letsencrypt.org`;
/// `https://127.0.0.1:14000/dir` -> `127.0.0.1_14000`.
pub fn ca_dir_name(directory: &str) -> String {
    let rest = directory
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(directory);
    let host = rest.split('/').next().unwrap_or(rest);
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("ca{name}")
    } else {
        name
    }
}

impl AcmeFiles {
    pub fn new(data_dir: &Path, directory: &str) -> AcmeFiles {
        AcmeFiles {
            dir: data_dir.join("acme").join(ca_dir_name(directory)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn certificate_path(&self) -> PathBuf {
        self.dir.join("certificate.pem")
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    fn io(&self, what: &str, e: std::io::Error) -> AcmeError {
        AcmeError::Files(format!("{what} in {}: {e}", self.dir.display()))
    }

    /// Creates the directory (0700) if needed, or makes it 0700.
    pub fn create_dir(&self) -> Result<(), AcmeError> {
        crate::util::fs::private_dir(&self.dir)
            .map_err(|e| self.io("cannot create the ACME directory", e))
    }

    /// The stored certificate file's text (key and chain), if there is one.
    pub fn read_certificate(&self) -> Result<Option<Vec<u8>>, AcmeError> {
        match std::fs::read(self.certificate_path()) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("cannot read certificate.pem", e)),
        }
    }

    pub fn write_certificate(&self, key_pem: &str, chain_pem: &str) -> Result<(), AcmeError> {
        self.create_dir()?;
        let mut text = String::with_capacity(key_pem.len() + chain_pem.len() + 1);
        text.push_str(key_pem);
        if !key_pem.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(chain_pem);
        write_private_atomic(&self.certificate_path(), text.as_bytes())
            .map_err(|e| self.io("cannot write certificate.pem", e))
    }

    pub fn read_account(&self) -> Result<Option<StoredAccount>, AcmeError> {
        let bytes = match std::fs::read(self.account_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot read account.json", e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AcmeError::Files(format!("account.json in {}: {e}", self.dir.display())))
    }

    pub fn write_account(&self, account: &StoredAccount) -> Result<(), AcmeError> {
        self.create_dir()?;
        let json = serde_json::to_vec_pretty(account)
            .map_err(|e| AcmeError::Files(format!("cannot encode the account: {e}")))?;
        write_private_atomic(&self.account_path(), &json)
            .map_err(|e| self.io("cannot write account.json", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_directory_per_ca() {
        assert_eq!(
            ca_dir_name("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org"
        );
        assert_eq!(
            ca_dir_name("https://127.0.0.1:14000/dir"),
            "127.0.0.1_14000"
        );
        assert_eq!(ca_dir_name("https://[::1]:14000/dir"), "___1__14000");
        assert_eq!(ca_dir_name("https://../x"), "ca..");
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let files = AcmeFiles::new(tmp.path(), "https://ca.example/dir");
        assert!(files.read_certificate().unwrap().is_none());
        files.write_certificate("KEY", "CHAIN\n").unwrap();
        let meta = std::fs::metadata(files.certificate_path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(files.read_certificate().unwrap().unwrap(), b"KEY\nCHAIN\n");
        let dir = std::fs::metadata(files.dir()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    }
}
