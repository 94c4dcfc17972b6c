//! The export archive of one contact, written front to back into any `Write` (a
//! pipe to the HTTP body, or standard output): zip entries with data descriptors,
//! so nothing is held back to be patched later.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::{names, ExportError, Exporter};
use crate::events::model::MessageContent;
use crate::store::outbox::OutboxEntry;
use crate::store::{ContactRecord, Store, StoredStatus};
use crate::util::time::rfc3339;

const PAGE: usize = 500;

/// What the archive holds, for `README.txt` (and the caller's log: counts only).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub inbound: u64,
    pub outbound: u64,
    pub calls: u64,
    pub deliveries: u64,
    pub deliveries_gone: u64,
    pub media: u64,
    pub media_missing: u64,
}

type Zip<W> = rawzip::ZipArchiveWriter<W>;

/// Writes the whole archive of contact `contact_id` into `out` (blocking).
pub fn write_export<W: Write>(
    x: &Exporter,
    contact_id: &str,
    out: W,
) -> Result<Counts, ExportError> {
    let st = &x.store;
    let contact = st.contact(contact_id)?.ok_or(ExportError::NotFound)?;
    let now = x.clock.now_micros();
    let mut zip = Zip::new(out);
    let mut counts = Counts::default();
    let mut deliveries = BTreeSet::new();
    let mut media = BTreeMap::new();
    let mut profile_names = BTreeSet::new();
    let recipient = contact.wa_id.clone().unwrap_or(contact.contact_id.clone());
    {
        let mut f = Entry::start(&mut zip, "messages.jsonl", now)?;
        let mut before = None;
        loop {
            let page = st.messages(Some(&contact.contact_id), None, before.as_deref(), PAGE)?;
            for m in &page.messages {
                deliveries.insert(m.delivery_id);
                profile_names.extend(m.profile_name.clone());
                if let MessageContent::Media { id: Some(mid), .. } = &m.message.content {
                    media.insert(mid.clone(), m.message.id.clone());
                }
                // Echoes and history messages the business sent are outbound.
                line(&mut f, &json!({"direction": m.direction, "message": m}))?;
                match m.direction == "outbound" {
                    true => counts.outbound += 1,
                    false => counts.inbound += 1,
                }
            }
            match page.next_before {
                Some(b) if !page.messages.is_empty() => before = Some(b),
                _ => break,
            }
        }
        for_each_outbound(st, &recipient, |e| {
            let statuses = match &e.wamid {
                Some(w) => st.statuses(w)?,
                None => Vec::new(),
            };
            deliveries.extend(statuses.iter().map(|s| s.delivery_id));
            counts.outbound += 1;
            Ok(line(&mut f, &outbound_line(e, &statuses))?)
        })?;
        f.finish()?;
    }
    {
        let mut f = Entry::start(&mut zip, "outbox.jsonl", now)?;
        for_each_outbound(st, &recipient, |e| Ok(line(&mut f, e)?))?;
        f.finish()?;
    }
    write_calls(st, &mut zip, &contact.contact_id, now, &mut counts)?;
    let view = contact_json(&contact, &profile_names, x.clock.now_secs());
    let mut f = Entry::start(&mut zip, "contact.json", now)?;
    serde_json::to_writer_pretty(&mut f, &view).map_err(io::Error::from)?;
    f.finish()?;
    write_deliveries(x, &mut zip, &deliveries, now, &mut counts)?;
    write_media(x, &mut zip, &media, now, &mut counts)?;
    let mut f = Entry::start(&mut zip, "README.txt", now)?;
    f.write_all(readme(&contact.contact_id, now, &counts).as_bytes())?;
    f.finish()?;
    zip.finish()?;
    Ok(counts)
}

/// `calls.jsonl`: the contact's calls, newest first, when there are any.
fn write_calls<W: Write>(
    st: &Store,
    zip: &mut Zip<W>,
    contact_id: &str,
    now: i64,
    counts: &mut Counts,
) -> Result<(), ExportError> {
    let mut page = st.calls(Some(contact_id), None, PAGE)?;
    if page.calls.is_empty() {
        return Ok(());
    }
    let mut f = Entry::start(zip, "calls.jsonl", now)?;
    loop {
        for c in &page.calls {
            line(&mut f, c)?;
            counts.calls += 1;
        }
        match page.next_before.take() {
            Some(b) => page = st.calls(Some(contact_id), Some(&b), PAGE)?,
            None => break,
        }
    }
    f.finish()?;
    Ok(())
}

/// Each outbox entry sent to `recipient`, newest first, a page at a time.
fn for_each_outbound(
    st: &Store,
    recipient: &str,
    mut f: impl FnMut(&OutboxEntry) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut before = None;
    loop {
        let page = st.outbox_for(recipient, before, PAGE)?;
        for e in &page {
            f(e)?;
        }
        match page.last() {
            Some(e) if page.len() == PAGE => before = Some(e.id),
            _ => return Ok(()),
        }
    }
}

fn outbound_line(e: &OutboxEntry, statuses: &[StoredStatus]) -> Value {
    let timeline: Vec<Value> = statuses
        .iter()
        .map(|s| {
            json!({"status": s.status.status, "at": rfc3339(s.status.timestamp.saturating_mul(1_000_000)),
                   "errors": s.status.errors})
        })
        .collect();
    json!({
        "direction": "outbound",
        "id": e.wamid,
        "outbox_id": e.id,
        "created_at": rfc3339(e.created_at_micros),
        "state": e.state,
        "message": e.request.message,
        "statuses": timeline,
    })
}

fn contact_json(c: &ContactRecord, profile_names: &BTreeSet<String>, now: i64) -> Value {
    json!({
        "record": c,
        "aliases": {"wa_id": c.wa_id, "user_id": c.user_id, "username": c.username},
        "profile_name": c.profile_name,
        "profile_names_seen": profile_names,
        "window": {
            "open": c.window_open(now),
            "closes_at": c.window_closes_at().map(|t| rfc3339(t.saturating_mul(1_000_000))),
        },
    })
}

/// `deliveries/<id>.json`: each raw delivery body exactly as Meta sent it.
fn write_deliveries<W: Write>(
    x: &Exporter,
    zip: &mut Zip<W>,
    ids: &BTreeSet<u64>,
    now: i64,
    counts: &mut Counts,
) -> Result<(), ExportError> {
    for &id in ids {
        let body = x.store.delivery(id)?.and_then(|meta| {
            let record = x.journal.read_at(meta.stream, meta.pos).ok()?;
            crate::journal::delivery::Delivery::decode(&record.payload).ok()
        });
        let Some(d) = body else {
            counts.deliveries_gone += 1; // deleted by retention meanwhile
            continue;
        };
        let mut f = Entry::start(zip, &format!("deliveries/{id}.json"), now)?;
        f.write_all(&d.body)?;
        f.finish()?;
        counts.deliveries += 1;
    }
    Ok(())
}

/// `media/<media id><ext>`: each stored file, decrypted once authenticated.
fn write_media<W: Write>(
    x: &Exporter,
    zip: &mut Zip<W>,
    ids: &BTreeMap<String, String>,
    now: i64,
    counts: &mut Counts,
) -> Result<(), ExportError> {
    for media_id in ids.keys() {
        let entry = x.store.media_entry(media_id)?;
        let opened = entry.as_ref().and_then(|e| {
            let file = e.servable_file()?;
            match (x.open_media)(file) {
                Ok(r) => Some(r),
                Err(err) => {
                    tracing::warn!(media_id = %e.media_id, error = %err, "export: a stored media file could not be read; left out");
                    None
                }
            }
        });
        let (Some(e), Some(mut reader)) = (entry, opened) else {
            counts.media_missing += 1;
            continue;
        };
        let ext = names::extension(e.mime_type.as_deref(), e.filename.as_deref());
        let name = format!("media/{}{ext}", names::safe(media_id));
        let mut f = Entry::start(zip, &name, now)?;
        copy(&mut reader, &mut f)?;
        f.finish()?;
        counts.media += 1;
    }
    Ok(())
}

fn copy(r: &mut dyn Read, w: &mut impl Write) -> io::Result<u64> {
    io::copy(r, w)
}

fn line<W: Write, V: Serialize + ?Sized>(w: &mut W, v: &V) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

/// One file of the archive being written: stored (the media are compressed already).
struct Entry<'a, W: Write> {
    data: rawzip::ZipDataWriter<rawzip::ZipEntryWriter<'a, W>>,
}

impl<'a, W: Write> Entry<'a, W> {
    fn start(zip: &'a mut Zip<W>, name: &str, now_micros: i64) -> Result<Self, ExportError> {
        let (entry, config) = zip
            .new_file(name)
            .last_modified(rawzip::time::UtcDateTime::from_unix(now_micros / 1_000_000))
            .unix_permissions(0o600)
            .start()?;
        Ok(Entry {
            data: config.wrap(entry),
        })
    }

    fn finish(self) -> Result<(), ExportError> {
        let (entry, descriptor) = self.data.finish()?;
        entry.finish(descriptor)?;
        Ok(())
    }
}

impl<W: Write> Write for Entry<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.data.flush()
    }
}

fn readme(contact_id: &str, now: i64, c: &Counts) -> String {
    format!(
        "wagate: the data held about one WhatsApp contact\n\
         contact: {contact_id}\n\
         made: {made}\n\n\
         contact.json     the contact record: ids (wa_id, user_id, username), the profile\n                 names seen, and the 24-hour customer service window.\n\
         messages.jsonl   one JSON object a line: messages as stored ({inbound} inbound;\n                 outbound: echoes of the WhatsApp Business app, history), then\n                 messages sent to the contact through wagate ({outbound} outbound\n                 in all) with their status timeline.\n\
         outbox.jsonl     each send request to the contact: the message, attempts and\n                 Meta's answers.\n\
         deliveries/      each webhook delivery from Meta that mentions the contact,\n                 byte for byte as received ({deliveries}; {gone} already deleted by\n                 retention). A delivery may also hold other people's items.\n\
         media/           each media file the contact sent that is still stored,\n                 decrypted, named by Meta's media id ({media}; {missing} no longer\n                 stored or not downloaded).\n\n\
         calls.jsonl      the contact's calls ({calls}): direction, state, events, start,\n                 end and duration (no call audio; WebRTC session descriptions only\n                 in the raw deliveries). Absent when there are none.\n\
         Retention and who receives the data: the business's privacy notice.\n",
        made = rfc3339(now),
        inbound = c.inbound,
        outbound = c.outbound,
        calls = c.calls,
        deliveries = c.deliveries,
        gone = c.deliveries_gone,
        media = c.media,
        missing = c.media_missing,
    )
}
