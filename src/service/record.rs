//! What the operations share: records in and out of the store, index hints, versions
//! and the rendered document.

use super::layout::{IndexKind, Record};
use super::Service;
use crate::caseless;
use crate::collection::{Entry, Verdict, ABANDON_MS};
use crate::error::{ErrorKind, Result, ScimError};
use crate::ids::parse_uuid;
use crate::schema::ResourceKind;
use crate::store::check_layout;
use crate::time::format_millis;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub(super) fn str_of<'v>(doc: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    doc.get(name).and_then(Value::as_str)
}

/// Equality of an attribute's values: exact, or under case folding (`caseExact: false`).
pub(super) fn same_value(a: &str, b: &str, exact: bool) -> bool {
    if exact {
        a == b
    } else {
        caseless::same(a, b)
    }
}

fn not_found(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", kind.name()))
}

impl<'a> Service<'a> {
    pub(super) fn load(&self, kind: ResourceKind, id: &str) -> Result<Option<Record>> {
        let key = self.keys().record(kind, id);
        match self.store.get(&key)? {
            None => Ok(None),
            Some(b) => {
                let rec: Record = serde_json::from_slice(&b)
                    .map_err(|e| ScimError::internal(format!("corrupt record {key}: {e}")))?;
                check_layout(&key, rec.layout)?;
                Ok(Some(rec))
            }
        }
    }

    /// A record's key and stored bytes, for writes batched with other keys.
    pub(super) fn encoded(
        &self,
        kind: ResourceKind,
        id: &str,
        rec: &Record,
    ) -> Result<(String, Vec<u8>)> {
        let bytes =
            serde_json::to_vec(rec).map_err(|e| ScimError::internal(format!("encode: {e}")))?;
        Ok((self.keys().record(kind, id), bytes))
    }

    pub(super) fn save(&self, kind: ResourceKind, id: &str, rec: &Record) -> Result<()> {
        let (key, bytes) = self.encoded(kind, id, rec)?;
        Ok(self.store.set(&key, &bytes)?)
    }

    /// Reads these resources' records in one batch, for the loads that follow.
    pub(super) fn prefetch_records<'i>(
        &self,
        kind: ResourceKind,
        ids: impl IntoIterator<Item = &'i str>,
    ) {
        let with_status = self.vault && kind == ResourceKind::User;
        let vk = crate::delivery::VaultKeys(&self.org);
        let mut keys = Vec::new();
        for id in ids {
            keys.push(self.keys().record(kind, id));
            if with_status {
                keys.push(vk.item(crate::delivery::Kind::User, id));
                keys.push(vk.observed(id));
            }
        }
        self.store.prefetch(&keys);
    }

    pub(super) fn require(&self, kind: ResourceKind, id: &str) -> Result<(String, Record)> {
        let Some(canon) = parse_uuid(id) else {
            return Err(not_found(kind, id));
        };
        match self.load(kind, &canon)? {
            Some(r) => Ok((canon, r)),
            None => Err(not_found(kind, id)),
        }
    }

    /// Verifies a listing log entry against the record it names.
    pub(super) fn verify_listing(&self, kind: ResourceKind, e: &Entry, t: i64) -> Result<Verdict> {
        Ok(match self.load(kind, &e.id)? {
            Some(r) if r.slot == e.slot => Verdict::Live,
            Some(_) => Verdict::Stale,
            None if self.now() - t < ABANDON_MS => Verdict::Pending,
            None => Verdict::Stale,
        })
    }

    pub(super) fn compact_listing(&self, kind: ResourceKind) -> Result<()> {
        let now = self.now();
        self.listing(kind)
            .compact(now, &|e, t| self.verify_listing(kind, e, t))
    }

    /// Reads the index hint and returns the id only if the record still carries `value`.
    pub(super) fn via_index(
        &self,
        index: IndexKind,
        value: &str,
    ) -> Result<Option<(String, Record)>> {
        let Some(b) = self.store.get(&self.keys().index(index, value))? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&b).to_string();
        let Some(rec) = self.load(index.kind(), &id)? else {
            return Ok(None);
        };
        let same =
            str_of(&rec.doc, index.attr()).is_some_and(|v| same_value(v, value, index.exact()));
        Ok(same.then_some((id, rec)))
    }

    pub(super) fn set_index(&self, index: IndexKind, value: &str, id: &str) -> Result<()> {
        let (key, bytes) = self.index_entry(index, value, id);
        Ok(self.store.set(&key, &bytes)?)
    }

    /// An index entry's key and value, for writes batched with other keys.
    pub(super) fn index_entry(&self, index: IndexKind, value: &str, id: &str) -> (String, Vec<u8>) {
        (self.keys().index(index, value), id.as_bytes().to_vec())
    }

    /// Removes an index entry if it still points at `id`.
    pub(super) fn clear_index(&self, index: IndexKind, value: &str, id: &str) -> Result<()> {
        let key = self.keys().index(index, value);
        if self.store.get(&key)?.as_deref() == Some(id.as_bytes()) {
            self.store.delete(&key)?;
        }
        Ok(())
    }

    pub(super) fn taken(what: &str, value: &str) -> ScimError {
        ScimError::new(
            ErrorKind::Uniqueness,
            format!("{what} '{value}' is already in use"),
        )
    }

    /// 409 when another resource (not `own`) holds the document's value of `index`.
    pub(super) fn check_unique(
        &self,
        index: IndexKind,
        doc: &Map<String, Value>,
        own: Option<&str>,
    ) -> Result<()> {
        if let Some(value) = str_of(doc, index.attr()) {
            if let Some((other, _)) = self.via_index(index, value)? {
                if Some(other.as_str()) != own {
                    return Err(Self::taken(index.attr(), value));
                }
            }
        }
        Ok(())
    }

    pub(super) fn version_of(rec: &Record, extra: Option<i64>) -> String {
        let bytes = serde_json::to_vec(&rec.doc).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(rec.modified.to_be_bytes());
        let d = h.finalize();
        let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
        match extra {
            Some(x) => format!("W/\"{hex}-{x}\""),
            None => format!("W/\"{hex}\""),
        }
    }

    pub(super) fn render(
        &self,
        kind: ResourceKind,
        id: &str,
        rec: Record,
        version: &str,
        modified: i64,
        extra: Option<(&str, Vec<Value>)>,
    ) -> Map<String, Value> {
        let mut out = Map::with_capacity(rec.doc.len() + 3);
        let mut d = rec.doc;
        out.insert(
            "schemas".into(),
            d.remove("schemas")
                .unwrap_or_else(|| json!([kind.core().id])),
        );
        out.insert("id".into(), Value::String(id.to_string()));
        out.extend(d);
        if let Some((name, list)) = extra {
            out.insert(name.to_string(), Value::Array(list));
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": kind.name(),
                "created": format_millis(rec.created),
                "lastModified": format_millis(modified),
                "location": self.location(kind, id),
                "version": version,
            }),
        );
        out
    }
}
