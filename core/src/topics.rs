//! Topic bookkeeping: who is subscribed to what, with O(1) subscribe, unsubscribe and
//! cleanup-on-close, and fan-out that walks one contiguous subscriber list.

use crate::slab::ConnId;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// A topic's subscribers. `subscribers` is unordered; removal swaps the last one in.
struct Topic {
    name: Arc<str>,
    subscribers: Vec<ConnId>,
}

/// One topic a connection holds, and where the connection sits in that topic's list.
#[derive(Clone, Copy)]
struct Membership {
    topic: u32,
    position: u32,
}

/// What a subscribe or unsubscribe changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing: already (un)subscribed.
    None,
    /// The connection's membership changed; the topic had, or still has, other subscribers.
    Member,
    /// The first subscriber arrived, or the last one left (a backplane (un)subscribes then).
    TopicEdge,
}

/// The registry of topics and memberships.
#[derive(Default)]
pub(crate) struct Topics {
    by_name: HashMap<Arc<str>, u32>,
    topics: Vec<Option<Topic>>,
    free: Vec<u32>,
    /// Indexed by `ConnId::index()`; a slot is cleared before its index is reused.
    memberships: Vec<SmallVec<[Membership; 4]>>,
}

impl Topics {
    fn memberships_mut(&mut self, conn: ConnId) -> &mut SmallVec<[Membership; 4]> {
        let i = conn.index();
        if self.memberships.len() <= i {
            self.memberships.resize_with(i + 1, SmallVec::new);
        }
        &mut self.memberships[i]
    }

    /// Number of topics `conn` holds.
    pub(crate) fn count_of(&self, conn: ConnId) -> usize {
        self.memberships.get(conn.index()).map_or(0, |m| m.len())
    }

    /// Subscribes `conn` to `name`. Limits are checked by the caller.
    pub(crate) fn subscribe(&mut self, conn: ConnId, name: &str) -> Change {
        let (topic_index, created) = match self.by_name.get(name) {
            Some(&i) => (i, false),
            None => {
                let name: Arc<str> = Arc::from(name);
                let topic = Topic {
                    name: name.clone(),
                    subscribers: Vec::new(),
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.topics[i as usize] = Some(topic);
                        i
                    }
                    None => {
                        self.topics.push(Some(topic));
                        (self.topics.len() - 1) as u32
                    }
                };
                self.by_name.insert(name, i);
                (i, true)
            }
        };
        if !created
            && self
                .memberships_mut(conn)
                .iter()
                .any(|m| m.topic == topic_index)
        {
            return Change::None;
        }
        let topic = self.topics[topic_index as usize]
            .as_mut()
            .expect("live topic");
        let position = topic.subscribers.len() as u32;
        topic.subscribers.push(conn);
        self.memberships_mut(conn).push(Membership {
            topic: topic_index,
            position,
        });
        if created {
            Change::TopicEdge
        } else {
            Change::Member
        }
    }

    /// Unsubscribes `conn` from `name`.
    pub(crate) fn unsubscribe(&mut self, conn: ConnId, name: &str) -> Change {
        let Some(&topic_index) = self.by_name.get(name) else {
            return Change::None;
        };
        let list = self.memberships_mut(conn);
        let Some(k) = list.iter().position(|m| m.topic == topic_index) else {
            return Change::None;
        };
        let membership = list.swap_remove(k);
        self.detach(conn, membership)
    }

    /// Removes `conn` from the subscriber list of one topic, fixing up the position of the
    /// subscriber that moves into its place, and drops the topic when it empties.
    fn detach(&mut self, conn: ConnId, membership: Membership) -> Change {
        let topic = self.topics[membership.topic as usize]
            .as_mut()
            .expect("live topic");
        let pos = membership.position as usize;
        debug_assert_eq!(topic.subscribers[pos], conn);
        topic.subscribers.swap_remove(pos);
        if let Some(&moved) = topic.subscribers.get(pos) {
            let moved_list = &mut self.memberships[moved.index()];
            let m = moved_list
                .iter_mut()
                .find(|m| m.topic == membership.topic)
                .expect("member");
            m.position = pos as u32;
        }
        if topic.subscribers.is_empty() {
            let name = topic.name.clone();
            self.by_name.remove(&name);
            self.topics[membership.topic as usize] = None;
            self.free.push(membership.topic);
            Change::TopicEdge
        } else {
            Change::Member
        }
    }

    /// Removes every membership of `conn`; returns the topics that lost their last subscriber.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) -> Vec<Arc<str>> {
        let Some(list) = self.memberships.get_mut(conn.index()) else {
            return Vec::new();
        };
        let list = std::mem::take(list);
        let mut emptied = Vec::new();
        for membership in list {
            let name = self.name_of(membership.topic);
            if self.detach(conn, membership) == Change::TopicEdge {
                emptied.push(name);
            }
        }
        emptied
    }

    fn name_of(&self, topic: u32) -> Arc<str> {
        self.topics[topic as usize]
            .as_ref()
            .expect("live topic")
            .name
            .clone()
    }

    /// The subscribers of `name` (empty when nobody holds it).
    pub(crate) fn subscribers(&self, name: &str) -> &[ConnId] {
        match self.by_name.get(name) {
            Some(&i) => {
                &self.topics[i as usize]
                    .as_ref()
                    .expect("live topic")
                    .subscribers
            }
            None => &[],
        }
    }

    /// Whether `conn` holds `name`.
    pub(crate) fn is_subscribed(&self, conn: ConnId, name: &str) -> bool {
        let Some(&i) = self.by_name.get(name) else {
            return false;
        };
        self.memberships
            .get(conn.index())
            .is_some_and(|l| l.iter().any(|m| m.topic == i))
    }

    /// The topics `conn` holds.
    pub(crate) fn topics_of(&self, conn: ConnId) -> Vec<Arc<str>> {
        self.memberships
            .get(conn.index())
            .map(|l| l.iter().map(|m| self.name_of(m.topic)).collect())
            .unwrap_or_default()
    }

    /// Number of live topics.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Names of all live topics.
    pub(crate) fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.by_name.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::Slab;

    fn conns(n: usize) -> Vec<ConnId> {
        let mut slab = Slab::new();
        (0..n).map(|_| slab.insert(())).collect()
    }

    #[test]
    fn subscribe_unsubscribe_keeps_positions_consistent() {
        let c = conns(4);
        let mut t = Topics::default();
        assert_eq!(t.subscribe(c[0], "a"), Change::TopicEdge);
        assert_eq!(t.subscribe(c[1], "a"), Change::Member);
        assert_eq!(t.subscribe(c[2], "a"), Change::Member);
        assert_eq!(t.subscribe(c[2], "a"), Change::None);
        assert_eq!(t.subscribe(c[3], "b"), Change::TopicEdge);
        assert_eq!(t.unsubscribe(c[0], "a"), Change::Member);
        // c[2] moved into c[0]'s place; removing it must still work.
        assert_eq!(t.unsubscribe(c[2], "a"), Change::Member);
        assert_eq!(t.subscribers("a"), &[c[1]]);
        assert_eq!(t.unsubscribe(c[1], "a"), Change::TopicEdge);
        assert_eq!(t.len(), 1);
        assert!(t.subscribers("a").is_empty());
    }

    #[test]
    fn remove_conn_reports_emptied_topics() {
        let c = conns(2);
        let mut t = Topics::default();
        t.subscribe(c[0], "shared");
        t.subscribe(c[1], "shared");
        t.subscribe(c[0], "mine");
        let emptied = t.remove_conn(c[0]);
        assert_eq!(
            emptied.iter().map(|s| &**s).collect::<Vec<_>>(),
            vec!["mine"]
        );
        assert_eq!(t.count_of(c[0]), 0);
        assert_eq!(t.subscribers("shared"), &[c[1]]);
        assert!(t.is_subscribed(c[1], "shared"));
        assert!(!t.is_subscribed(c[0], "shared"));
    }
}
