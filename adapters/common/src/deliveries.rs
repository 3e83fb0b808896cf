//! The data frames of one pump, grouped by recipient: each connection's queue is locked once
//! per pump for everything it gets, not once per frame.
//!
//! One read from a busy sender holds several messages; each publish reaches the same room. Pushed
//! one by one, every frame would cost a lock and unlock of the recipient's queue: two locked
//! instructions on a line the recipient's writer also touches, the largest user-space cost of a
//! delivery in `perf`. Grouped, the lock is paid once per recipient per pump. Order is kept: a
//! recipient's frames stay in output order, and any other output (a close, a ping) first
//! flushes what was grouped before it.

use crate::frame::PreparedFrame;
use crate::outbox::Outgoing;
use crate::shared::Effects;
use crate::table::ConnTable;
use smallvec::SmallVec;
use wskit::{ConnId, Message};

/// Lists longer than this are not kept allocated between pumps.
const KEEP: usize = 16 * 1024;

/// A frame of this pump: framed once for a broadcast, or a reply to frame for its recipient.
enum Item {
    Frame(PreparedFrame),
    Message(Message),
}

/// No next link.
const END: u32 = u32::MAX;

struct Recipient {
    conn: ConnId,
    /// First and last of its entries in `Deliveries::links` (a list in output order).
    first: u32,
    last: u32,
}

/// One frame for one recipient: an index into `items`, and the recipient's next link.
struct Link {
    item: u32,
    next: u32,
}

/// Frames waiting to be pushed, grouped by recipient. Its vectors keep their capacity between
/// pumps, so grouping allocates nothing once warm.
#[derive(Default)]
pub(crate) struct Deliveries {
    items: Vec<Item>,
    links: Vec<Link>,
    recipients: Vec<Recipient>,
    /// By `ConnId::index()`: 1 + the position in `recipients`, or 0.
    position: Vec<u32>,
}

impl Deliveries {
    /// A reply for one connection.
    pub(crate) fn send(&mut self, conn: ConnId, message: Message) {
        let item = self.item(Item::Message(message));
        self.add(conn, item);
    }

    /// A publish, framed once for all its recipients.
    pub(crate) fn broadcast(&mut self, conns: &[ConnId], message: &Message) {
        if conns.is_empty() {
            return;
        }
        let item = self.item(Item::Frame(PreparedFrame::message(message)));
        for &conn in conns {
            self.add(conn, item);
        }
    }

    fn item(&mut self, item: Item) -> u32 {
        self.items.push(item);
        (self.items.len() - 1) as u32
    }

    fn add(&mut self, conn: ConnId, item: u32) {
        let link = self.links.len() as u32;
        self.links.push(Link { item, next: END });
        let slot = conn.index();
        if self.position.len() <= slot {
            self.position.resize(slot + 1, 0);
        }
        if let Some(r) = (self.position[slot] as usize)
            .checked_sub(1)
            .map(|p| &mut self.recipients[p])
        {
            // A stale id sharing the slot gets a list of its own (and is skipped at flush).
            if r.conn == conn {
                self.links[r.last as usize].next = link;
                r.last = link;
                return;
            }
        }
        self.recipients.push(Recipient {
            conn,
            first: link,
            last: link,
        });
        self.position[slot] = self.recipients.len() as u32;
    }

    /// Pushes everything grouped so far, one queue lock per recipient.
    pub(crate) fn flush(
        &mut self,
        table: &ConnTable,
        fx: &mut Effects,
        slow: &mut SmallVec<[ConnId; 4]>,
    ) {
        let Deliveries {
            items,
            links,
            recipients,
            position,
        } = self;
        for r in recipients.drain(..) {
            position[r.conn.index()] = 0;
            let Some(outbox) = table.get(r.conn) else {
                continue;
            };
            let mut at = r.first;
            let frames = std::iter::from_fn(|| {
                let link = links.get(at as usize)?;
                at = link.next;
                Some(match &items[link.item as usize] {
                    Item::Frame(frame) => Outgoing::Frame(frame),
                    Item::Message(message) => Outgoing::Message(message),
                })
            });
            fx.outcome(r.conn, outbox.push_all(frames), slow);
        }
        items.clear();
        links.clear();
        if links.capacity() > KEEP {
            links.shrink_to(KEEP);
            recipients.shrink_to(KEEP);
        }
    }
}
