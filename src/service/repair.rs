//! Repair: the resources' own keys (records and membership markers) are the truth, and
//! every list and membership log can be rebuilt from them. Where the host has atomics
//! the logs never lose a change; without them (the edge) two writers can take one slot
//! and one change is overwritten, and this brings the logs back to exact.
//!
//! Listings are rebuilt as a new snapshot; member and group logs get the adds and
//! removes they miss appended. Changes made while a repair runs may need the next one.

use super::layout::{CollectionName, Record};
use super::record::str_of;
use super::users::GROUPS_READ_AHEAD;
use super::Service;
use crate::collection::{always_live, Collection, Entry};
use crate::error::Result;
use crate::schema::ResourceKind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Records read per batch.
const BATCH: usize = 500;

/// What one repair found and changed.
#[derive(Debug, Default)]
struct Tally {
    listings: Vec<&'static str>,
    members_added: usize,
    members_removed: usize,
    groups_added: usize,
    groups_removed: usize,
    stale_markers: usize,
}

impl<'a> Service<'a> {
    /// `POST /_repair`: compares every listing and membership log with the records and
    /// markers and fixes what differs. Costs a scan of the store's keys.
    pub fn repair(&self) -> Result<Value> {
        let keys = self.store.list_keys(&self.keys().all())?;
        let ids = |kind: ResourceKind| -> BTreeSet<String> {
            let prefix = self.keys().records(kind);
            keys.iter()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|id| !id.contains('/'))
                .map(str::to_string)
                .collect()
        };
        let (users, groups) = (ids(ResourceKind::User), ids(ResourceKind::Group));
        let mut markers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let prefix = self.keys().markers();
        for k in &keys {
            if let Some((gid, uid)) = k.strip_prefix(&prefix).and_then(|r| r.split_once('/')) {
                markers
                    .entry(gid.to_string())
                    .or_default()
                    .insert(uid.to_string());
            }
        }
        let mut tally = Tally::default();
        for (kind, ids, name) in [
            (ResourceKind::User, &users, "Users"),
            (ResourceKind::Group, &groups, "Groups"),
        ] {
            if self.repair_listing(kind, ids)? {
                tally.listings.push(name);
            }
        }
        let none = BTreeSet::new();
        let mut user_groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for gid in &groups {
            let members = markers.get(gid).unwrap_or(&none);
            let (live, gone): (BTreeSet<&str>, BTreeSet<&str>) = members
                .iter()
                .map(String::as_str)
                .partition(|u| users.contains(*u));
            // A marker outliving its user (a delete cut short) is dropped.
            for u in &gone {
                self.store.delete(&self.keys().marker(gid, u))?;
                tally.stale_markers += 1;
            }
            self.repair_members(gid, &live, &mut tally)?;
            for u in live {
                user_groups.entry(u).or_default().insert(gid);
            }
        }
        let no_groups = BTreeSet::new();
        let all: Vec<&String> = users.iter().collect();
        for batch in all.chunks(BATCH / 4) {
            let ahead: Vec<String> = batch
                .iter()
                .flat_map(|u| {
                    self.collection(CollectionName::UserGroups(u))
                        .read_ahead(GROUPS_READ_AHEAD)
                })
                .collect();
            self.store.prefetch(&ahead);
            for uid in batch {
                let want = user_groups.get(uid.as_str()).unwrap_or(&no_groups);
                self.repair_user_groups(uid, want, &groups, &mut tally)?;
            }
        }
        Ok(json!({
            "users": users.len(),
            "groups": groups.len(),
            "memberships": user_groups.values().map(BTreeSet::len).sum::<usize>(),
            "rebuiltListings": tally.listings,
            "membersAdded": tally.members_added,
            "membersRemoved": tally.members_removed,
            "userGroupsAdded": tally.groups_added,
            "userGroupsRemoved": tally.groups_removed,
            "staleMarkersRemoved": tally.stale_markers,
        }))
    }

    /// Rebuilds a listing whose ids differ from the records'. True when rebuilt.
    fn repair_listing(&self, kind: ResourceKind, ids: &BTreeSet<String>) -> Result<bool> {
        let log = self.listing(kind);
        let top = log.top()?;
        let now = self.now();
        let listed: BTreeSet<String> = log
            .all(now, &|e, t| self.verify_listing(kind, e, t))?
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect();
        if &listed == ids {
            return Ok(false);
        }
        let mut entries = Vec::with_capacity(ids.len());
        let all: Vec<&String> = ids.iter().collect();
        for batch in all.chunks(BATCH) {
            self.prefetch_records(kind, batch.iter().map(|s| s.as_str()));
            for id in batch {
                if let Some(rec) = self.load(kind, id)? {
                    entries.push(Entry {
                        id: id.to_string(),
                        slot: rec.slot,
                        display: None,
                    });
                }
            }
        }
        log.rebuild(top, entries, now)
    }

    /// Appends to a group's member log the adds and removes its markers call for.
    fn repair_members(&self, gid: &str, want: &BTreeSet<&str>, t: &mut Tally) -> Result<()> {
        let log = self.collection(CollectionName::GroupMembers(gid));
        let have = self.ids_in(&log)?;
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|u| !have.contains(*u))
            .collect();
        self.prefetch_records(ResourceKind::User, missing.iter().copied());
        let mut adds = Vec::with_capacity(missing.len());
        for uid in missing {
            let user: Option<Record> = self.load(ResourceKind::User, uid)?;
            let display = user.and_then(|u| str_of(&u.doc, "userName").map(str::to_string));
            adds.push((uid, display));
        }
        let extra: Vec<&str> = have
            .iter()
            .map(String::as_str)
            .filter(|u| !want.contains(u))
            .collect();
        let (added, removed) = self.append(&log, adds, extra)?;
        t.members_added += added;
        t.members_removed += removed;
        Ok(())
    }

    /// Appends to a user's group log what the markers call for; groups since deleted are
    /// left alone (reads drop them).
    fn repair_user_groups(
        &self,
        uid: &str,
        want: &BTreeSet<&str>,
        groups: &BTreeSet<String>,
        t: &mut Tally,
    ) -> Result<()> {
        let log = self.collection(CollectionName::UserGroups(uid));
        let mut have = self.ids_in(&log)?;
        have.retain(|g| groups.contains(g));
        let adds = want
            .iter()
            .filter(|g| !have.contains(**g))
            .map(|g| (*g, None))
            .collect();
        let extra = have
            .iter()
            .map(String::as_str)
            .filter(|g| !want.contains(g))
            .collect();
        let (added, removed) = self.append(&log, adds, extra)?;
        t.groups_added += added;
        t.groups_removed += removed;
        Ok(())
    }

    /// The ids a membership log holds.
    fn ids_in(&self, log: &Collection<'_>) -> Result<BTreeSet<String>> {
        Ok(log
            .all(self.now(), &always_live)?
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect())
    }

    /// Appends the adds (with their displays) and the removes by id; their counts.
    fn append(
        &self,
        log: &Collection<'_>,
        adds: Vec<(&str, Option<String>)>,
        removes: Vec<&str>,
    ) -> Result<(usize, usize)> {
        let now = self.now();
        let counts = (adds.len(), removes.len());
        for (id, display) in adds {
            let slot = log.add(id, display.as_deref(), now)?;
            self.compact_if_due(log, slot)?;
        }
        for id in removes {
            let slot = log.remove(id, None, now)?;
            self.compact_if_due(log, slot)?;
        }
        Ok(counts)
    }
}
