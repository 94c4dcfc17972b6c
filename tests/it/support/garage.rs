//! Garage (crates.io `garage`, an S3-compatible object store) as a child process,
//! for the object-storage tests: a single node on free ports in a temp dir, one
//! layout, one key and one bucket. `.ci/run` installs it (`cargo install garage`).
//!
//! Setup: `garage -c CONFIG server`, then (once `garage status` answers) `node id`,
//! `layout assign -z dc1 -c 1G <id>`, `layout apply --version 1`, the key through
//! `json-api CreateKey` (its JSON answer carries the key id and secret), `bucket
//! create`, `bucket allow --read --write --owner`.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use rand::RngCore;
use tempfile::TempDir;
use wagate::config::{MediaStoreConfig, Secret};

use super::eventually;
use super::pebble::free_port;

pub const BUCKET: &str = "wagate";
pub const REGION: &str = "garage";

pub struct Garage {
    child: Child,
    /// Config, metadata, data and `garage.log`.
    pub dir: TempDir,
    config: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The garage binary: on `PATH` or in `~/.cargo/bin`, or a panic that says how to
/// get it.
pub fn binary() -> PathBuf {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(home)
        .map(|dir| dir.join("garage"))
        .find(|p| p.is_file())
        .expect("garage is not installed: cargo install garage --locked (or run .ci/run)")
}

fn hex32() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

impl Garage {
    /// Starts a single-node Garage and sets up its layout, key and bucket.
    pub async fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{token}"
"#,
            d = dir.path().display(),
            secret = hex32(),
            token = hex32(),
        );
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn garage");
        let mut g = Garage {
            child,
            dir,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
        };
        g.set_up().await;
        g
    }

    /// `garage -c CONFIG args...`, its output (a panic with its stderr if it fails).
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.try_run(args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out
    }

    fn try_run(&self, args: &[&str]) -> Output {
        Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run garage")
    }

    async fn set_up(&mut self) {
        eventually("garage to answer `status`", async || {
            let out = self.try_run(&["status"]);
            out.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .await;
        let id = String::from_utf8(self.run(&["node", "id", "-q"]).stdout).unwrap();
        let id = id.trim().split('@').next().unwrap().to_string();
        self.run(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        self.run(&["layout", "apply", "--version", "1"]);
        let key = self.run(&["json-api", "CreateKey", r#"{"name":"wagate-key"}"#]);
        let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
        self.key_id = key["accessKeyId"].as_str().unwrap().to_string();
        self.secret = key["secretAccessKey"].as_str().unwrap().to_string();
        self.run(&["bucket", "create", BUCKET]);
        self.run(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "wagate-key",
        ]);
    }

    /// `s3://wagate/<prefix>` with this server's endpoint and key.
    pub fn store(&self, prefix: &str) -> MediaStoreConfig {
        self.store_with_key(prefix, &self.key_id, &self.secret)
    }

    /// The same bucket under a given key (a wrong one to see writes refused).
    pub fn store_with_key(&self, prefix: &str, key_id: &str, secret: &str) -> MediaStoreConfig {
        let mut s = MediaStoreConfig::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap();
        s.options = self
            .env(key_id, secret)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Secret::new(v)))
            .collect();
        s
    }

    /// The `AWS_*` variables for a wagate child process.
    pub fn env(&self, key_id: &str, secret: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), key_id.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// The names of the objects under `prefix`.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let store = wagate::media::objects::Objects::open(&self.store(prefix)).unwrap();
        store.list().unwrap().into_iter().map(|(n, _)| n).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }
}
