//! Write buffers kept for reuse across connections.
//!
//! A connection's pending output is one buffer per burst, allocated when the first frame is
//! queued and written out whole. Handing a written buffer straight back to the allocator costs
//! more than it seems: under fan-out load, glibc returns the freed memory to the kernel and
//! faults it back in on the next burst (a sixth of the server's CPU in `perf`; BENCHMARKS.md).
//! Writers put written buffers here instead and publishers take them back, so a busy server
//! reuses the same warm memory. The pool keeps at most `Config::write_buffer_pool_bytes` of
//! capacity in all (shared by every connection; idle connections hold no buffer).

use parking_lot::Mutex;

/// The first capacity of a pending buffer (it doubles as a burst needs).
pub(crate) const FIRST_CAPACITY: usize = 1024;

/// Buffers that grew past this are freed, not kept: one huge burst must not pin its memory.
const MAX_KEPT_CAPACITY: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Free {
    buffers: Vec<Vec<u8>>,
    /// Sum of the kept buffers' capacities.
    bytes: usize,
}

/// A bounded stack of empty buffers (last in, first out: the warmest memory first).
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
    max_bytes: usize,
}

impl BufferPool {
    /// A pool keeping at most `max_bytes` of buffer capacity (0: keep nothing).
    pub(crate) fn new(max_bytes: usize) -> Self {
        BufferPool {
            free: Mutex::new(Free::default()),
            max_bytes,
        }
    }

    /// An empty buffer with room for at least `min` bytes.
    pub(crate) fn take(&self, min: usize) -> Vec<u8> {
        let kept = if self.max_bytes > 0 {
            let mut free = self.free.lock();
            let buf = free.buffers.pop();
            if let Some(b) = &buf {
                free.bytes -= b.capacity();
            }
            buf
        } else {
            None
        };
        match kept {
            Some(mut buf) => {
                buf.reserve(min);
                buf
            }
            None => Vec::with_capacity(FIRST_CAPACITY.max(min)),
        }
    }

    /// Keeps a written buffer for reuse, or frees it when the pool is full or it is too big.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if !(FIRST_CAPACITY..=MAX_KEPT_CAPACITY).contains(&capacity) {
            return;
        }
        let mut free = self.free.lock();
        if free.bytes + capacity > self.max_bytes {
            return;
        }
        buf.clear();
        free.bytes += capacity;
        free.buffers.push(buf);
    }

    /// Capacity kept for reuse (tests, diagnostics).
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.free.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_with_its_memory() {
        let pool = BufferPool::new(1 << 20);
        let mut buf = pool.take(10);
        buf.extend_from_slice(&[1; 3000]);
        let (ptr, capacity) = (buf.as_ptr(), buf.capacity());
        pool.give(buf);
        assert_eq!(pool.kept_bytes(), capacity);
        let again = pool.take(10);
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (ptr, capacity));
        assert_eq!(pool.kept_bytes(), 0);
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_bound() {
        let pool = BufferPool::new(3 * FIRST_CAPACITY);
        for _ in 0..5 {
            pool.give(Vec::with_capacity(FIRST_CAPACITY));
        }
        assert_eq!(pool.kept_bytes(), 3 * FIRST_CAPACITY);
        pool.give(Vec::with_capacity(MAX_KEPT_CAPACITY * 2));
        pool.give(Vec::with_capacity(8));
        assert_eq!(
            pool.kept_bytes(),
            3 * FIRST_CAPACITY,
            "too big and too small are freed"
        );
    }

    #[test]
    fn an_unpooled_take_allocates_and_a_small_kept_buffer_grows() {
        assert!(BufferPool::new(0).take(5000).capacity() >= 5000);
        let pool = BufferPool::new(1 << 20);
        pool.give(Vec::with_capacity(FIRST_CAPACITY));
        assert!(pool.take(4 * FIRST_CAPACITY).capacity() >= 4 * FIRST_CAPACITY);
    }
}
