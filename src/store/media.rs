//! Media jobs: entries by media id and the pending set (what the worker resumes
//! after a restart).

use super::{Changes, Store, StoreError, T};
use crate::media::record::MediaEntry;

fn decode(bytes: &[u8]) -> Result<MediaEntry, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

impl Changes {
    pub fn put_media(&mut self, e: &MediaEntry) {
        let key = e.media_id.as_bytes();
        self.put(T::Media, key, serde_json::to_vec(e).expect("serialisable"));
        let mut by_time = super::be(e.created_at_micros.max(0) as u64).to_vec();
        by_time.extend_from_slice(key);
        self.put(T::MediaByTime, by_time, []);
        if e.state.is_final() {
            self.del(T::MediaPending, key);
        } else {
            self.put(T::MediaPending, key, []);
        }
    }
}

impl Store {
    pub fn media_entry(&self, media_id: &str) -> Result<Option<MediaEntry>, StoreError> {
        self.tree(T::Media)
            .get(media_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Jobs not final yet.
    pub fn media_pending(&self) -> Result<Vec<MediaEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree(T::MediaPending).iter() {
            let (k, _) = kv?;
            if let Some(e) = self.tree(T::Media).get(&k)? {
                out.push(decode(&e)?);
            }
        }
        Ok(out)
    }

    /// Calls `f` on every entry (the sweeps; media entries are few and small).
    pub fn media_for_each(
        &self,
        mut f: impl FnMut(MediaEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.tree(T::Media).iter() {
            let (_, v) = kv?;
            f(decode(&v)?)?;
        }
        Ok(())
    }
}
