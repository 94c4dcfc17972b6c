//! `WAGATE_MEDIA_STORE`: where media files are kept when not on the local disk.

use super::Secret;

/// Which cloud's object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `s3://`: Amazon S3 or any S3-compatible server (`AWS_*` variables).
    S3,
    /// `gs://`: Google Cloud Storage (`GOOGLE_*` variables).
    Gcs,
    /// `az://`: Azure Blob Storage (`AZURE_*` variables).
    Azure,
}

/// A bucket (or container) and the prefix under which wagate keeps its objects.
#[derive(Debug, Clone)]
pub struct MediaStoreConfig {
    pub kind: StoreKind,
    pub bucket: String,
    /// No leading or trailing `/`; may be empty.
    pub prefix: String,
    /// Settings that override the cloud's environment variables, by their
    /// `object_store` names (`aws_access_key_id`, `aws_endpoint`, `aws_allow_http`...).
    /// Empty when read from the environment; set by tests and embedders.
    pub options: Vec<(String, Secret)>,
}

impl MediaStoreConfig {
    /// `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`.
    pub fn parse(url: &str) -> Result<MediaStoreConfig, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("'{url}' is not s3://, gs:// or az://bucket/prefix"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "s3" => StoreKind::S3,
            "gs" => StoreKind::Gcs,
            "az" => StoreKind::Azure,
            other => return Err(format!("unknown scheme '{other}' (s3, gs or az)")),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !bucket_ok {
            return Err(format!("'{bucket}' is not a bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        if !prefix.is_empty() && !prefix_ok {
            return Err(format!(
                "'{prefix}' is not a prefix (letters, digits, '-', '_', '.', '/')"
            ));
        }
        Ok(MediaStoreConfig {
            kind,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            options: Vec::new(),
        })
    }

    /// The store as written in `WAGATE_MEDIA_STORE` (no secrets in it).
    pub fn url(&self) -> String {
        let scheme = match self.kind {
            StoreKind::S3 => "s3",
            StoreKind::Gcs => "gs",
            StoreKind::Azure => "az",
        };
        match self.prefix.as_str() {
            "" => format!("{scheme}://{}", self.bucket),
            p => format!("{scheme}://{}/{p}", self.bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_clouds_and_refuses_the_rest() {
        let c = MediaStoreConfig::parse("s3://wagate/media/eu/").unwrap();
        assert_eq!(
            (c.kind, c.bucket.as_str(), c.prefix.as_str()),
            (StoreKind::S3, "wagate", "media/eu")
        );
        assert_eq!(c.url(), "s3://wagate/media/eu");
        assert_eq!(
            MediaStoreConfig::parse("gs://b").unwrap().kind,
            StoreKind::Gcs
        );
        assert_eq!(MediaStoreConfig::parse("gs://b").unwrap().url(), "gs://b");
        assert_eq!(
            MediaStoreConfig::parse("az://c/p").unwrap().kind,
            StoreKind::Azure
        );
        for bad in [
            "wagate",
            "file:///tmp",
            "s3://",
            "s3:///x",
            "s3://b/../x",
            "s3://b/a//c",
            "s3://b c/x",
        ] {
            assert!(MediaStoreConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
