//! The adapter's connection table: `ConnId::index()` addresses a dense vector, the generation
//! tells a live entry from a stale one whose slot was reused.

use crate::outbox::Outbox;
use std::sync::Arc;
use wskit::ConnId;

/// Outbound queues of the connections the core knows, by id.
#[derive(Debug, Default)]
pub struct ConnTable {
    slots: Vec<Option<(ConnId, Arc<Outbox>)>>,
    len: usize,
}

impl ConnTable {
    /// Records `conn`'s queue, replacing a stale occupant of the slot.
    pub fn insert(&mut self, conn: ConnId, outbox: Arc<Outbox>) {
        let i = conn.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace((conn, outbox)).is_none() {
            self.len += 1;
        }
    }

    /// The queue of `conn`, if it is still the slot's occupant.
    pub fn get(&self, conn: ConnId) -> Option<&Arc<Outbox>> {
        match self.slots.get(conn.index()) {
            Some(Some((id, outbox))) if *id == conn => Some(outbox),
            _ => None,
        }
    }

    /// Forgets `conn` (no-op for a stale id).
    pub fn remove(&mut self, conn: ConnId) -> Option<Arc<Outbox>> {
        let slot = self.slots.get_mut(conn.index())?;
        if slot.as_ref().is_some_and(|(id, _)| *id == conn) {
            self.len -= 1;
            return slot.take().map(|(_, o)| o);
        }
        None
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Arc<Outbox>)> {
        self.slots.iter().flatten().map(|(id, o)| (*id, o))
    }
}
