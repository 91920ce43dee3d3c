//! ConflatingQueue: a keyed queue that never grows past one item per key.
//!
//! The invariant: a key keeps its place in the queue until it is popped.
//! Pushing a key that is already queued replaces its item (or merges into it,
//! with the merge function given at construction) without moving it; pushing a
//! new key appends it at the tail. Nothing is dropped except by replacement or
//! merge of the same key. Push and pop are O(1).
//!
//! The wakeup is a level, not a count: [`ConflatingQueue::ready`] completes
//! whenever the queue is non-empty, however many pushes happened, so it can sit
//! in a `tokio::select!` next to other events.

use parking_lot::{Mutex, MutexGuard};
use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::Hash;
use tokio::sync::Notify;

/// How a pushed value combines with the one already queued under its key.
pub type MergeFn<V> = Box<dyn Fn(V, V) -> V + Send + Sync>;

struct Inner<K, V> {
    items: HashMap<K, V>,
    order: VecDeque<K>,
}

/// A thread-safe keyed queue that conflates by key. See the module docs.
pub struct ConflatingQueue<K, V> {
    inner: Mutex<Inner<K, V>>,
    merge: Option<MergeFn<V>>,
    wakeup: Notify,
}

impl<K: Hash + Eq + Clone, V> Default for ConflatingQueue<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, V> ConflatingQueue<K, V> {
    /// A queue where a newer item replaces the queued one of the same key.
    pub fn new() -> Self {
        ConflatingQueue {
            inner: Mutex::new(Inner {
                items: HashMap::default(),
                order: VecDeque::new(),
            }),
            merge: None,
            wakeup: Notify::new(),
        }
    }

    /// A queue where a newer item is merged into the queued one of the same
    /// key with `merge(existing, new)`.
    pub fn with_merge(merge: impl Fn(V, V) -> V + Send + Sync + 'static) -> Self {
        let mut q = Self::new();
        q.merge = Some(Box::new(merge));
        q
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // No poisoning: a panic inside `merge` leaves the queue consistent
        // (the entry was removed before merging).
        self.inner.lock()
    }

    /// Queues `value` under `key`: appended if the key is new, otherwise
    /// replacing or merging into the queued item in place. Returns the item it
    /// replaced (never when merging), so the caller drops it outside the lock.
    pub fn push(&self, key: K, value: V) -> Option<V> {
        let replaced = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            match inner.items.entry(key) {
                Entry::Occupied(mut slot) => match &self.merge {
                    Some(merge) => {
                        let (k, old) = slot.remove_entry();
                        inner.items.insert(k, merge(old, value));
                        None
                    }
                    None => Some(slot.insert(value)),
                },
                Entry::Vacant(slot) => {
                    inner.order.push_back(slot.key().clone());
                    slot.insert(value);
                    None
                }
            }
        };
        // Level-triggered: Notify keeps at most one permit, so a burst of
        // pushes costs the consumer one wakeup.
        self.wakeup.notify_one();
        replaced
    }

    /// Queues `value` under `key` only if the key is not queued. Returns the
    /// value back when it is. With [`replace_if`](Self::replace_if) this lets a
    /// caller merge with a function that must not run under the queue's lock
    /// (e.g. one calling into Python): read, merge outside, swap if unchanged.
    pub fn push_if_absent(&self, key: K, value: V) -> Result<(), V> {
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            match inner.items.entry(key) {
                Entry::Occupied(_) => return Err(value),
                Entry::Vacant(slot) => {
                    inner.order.push_back(slot.key().clone());
                    slot.insert(value);
                }
            }
        }
        self.wakeup.notify_one();
        Ok(())
    }

    /// Runs `f` on the item queued under `key` (if any), under the lock.
    /// `f` must be quick and must not call back into the queue.
    pub fn peek_with<T>(&self, key: &K, f: impl FnOnce(Option<&V>) -> T) -> T {
        f(self.lock().items.get(key))
    }

    /// Replaces the item queued under `key` with `value` if `unchanged` holds
    /// for it, keeping the key's place, and returns the replaced item. Returns
    /// the value back when the key is gone or its item changed.
    pub fn replace_if(
        &self,
        key: &K,
        unchanged: impl FnOnce(&V) -> bool,
        value: V,
    ) -> Result<V, V> {
        let old = {
            let mut inner = self.lock();
            match inner.items.get_mut(key) {
                Some(held) if unchanged(held) => std::mem::replace(held, value),
                _ => return Err(value),
            }
        };
        self.wakeup.notify_one();
        Ok(old)
    }

    /// Removes and returns the oldest queued key and its item.
    pub fn pop(&self) -> Option<(K, V)> {
        let mut inner = self.lock();
        let key = inner.order.pop_front()?;
        let value = inner
            .items
            .remove(&key)
            .expect("every queued key has an item");
        Some((key, value))
    }

    /// Moves every queued item, oldest first, into `out` under one lock
    /// acquisition (a consumer draining a burst pays for the lock once).
    pub fn pop_all(&self, out: &mut Vec<(K, V)>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        out.reserve(inner.order.len());
        for key in inner.order.drain(..) {
            let value = inner
                .items
                .remove(&key)
                .expect("every queued key has an item");
            out.push((key, value));
        }
    }

    /// How many keys are queued.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Completes when the queue is non-empty (at once if it already is).
    pub async fn ready(&self) {
        loop {
            let notified = self.wakeup.notified();
            tokio::pin!(notified);
            // Register before checking, so a push between the check and the
            // await still wakes us.
            notified.as_mut().enable();
            if !self.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Waits until an item is queued and pops it.
    pub async fn get(&self) -> (K, V) {
        loop {
            self.ready().await;
            if let Some(item) = self.pop() {
                return item;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn new_keys_append_and_pop_oldest_first() {
        let q = ConflatingQueue::new();
        q.push("a", 1);
        q.push("b", 2);
        q.push("c", 3);
        assert_eq!(q.pop(), Some(("a", 1)));
        assert_eq!(q.pop(), Some(("b", 2)));
        assert_eq!(q.pop(), Some(("c", 3)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn pushing_a_queued_key_replaces_without_moving() {
        let q = ConflatingQueue::new();
        q.push("a", 1);
        q.push("b", 2);
        q.push("a", 10);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(("a", 10)));
        assert_eq!(q.pop(), Some(("b", 2)));
    }

    #[test]
    fn merge_function_combines_existing_and_new() {
        let q = ConflatingQueue::with_merge(|a: Vec<i32>, b: Vec<i32>| [a, b].concat());
        q.push("a", vec![1]);
        q.push("b", vec![2]);
        q.push("a", vec![3]);
        assert_eq!(q.pop(), Some(("a", vec![1, 3])));
        assert_eq!(q.pop(), Some(("b", vec![2])));
    }

    #[test]
    fn pop_all_takes_everything_oldest_first() {
        let q = ConflatingQueue::new();
        q.push("a", 1);
        q.push("b", 2);
        q.push("a", 3);
        let mut out = Vec::new();
        q.pop_all(&mut out);
        assert_eq!(out, vec![("a", 3), ("b", 2)]);
        assert!(q.is_empty());
        q.push("a", 4);
        assert_eq!(q.pop(), Some(("a", 4)));
    }

    #[test]
    fn a_popped_key_is_forgotten_and_requeues_at_the_tail() {
        let q = ConflatingQueue::new();
        q.push("a", 1);
        q.push("b", 2);
        assert_eq!(q.pop(), Some(("a", 1)));
        q.push("a", 3);
        assert_eq!(q.pop(), Some(("b", 2)));
        assert_eq!(q.pop(), Some(("a", 3)));
    }

    #[tokio::test]
    async fn ready_is_a_level_many_pushes_one_wakeup() {
        let q = Arc::new(ConflatingQueue::new());
        for i in 0..100 {
            q.push(i % 3, i);
        }
        q.ready().await;
        assert_eq!(q.len(), 3);
        // Still ready: it is a level, not an edge.
        q.ready().await;
        while q.pop().is_some() {}
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        };
        tokio::task::yield_now().await;
        q.push(7, 70);
        assert_eq!(waiter.await.unwrap(), (7, 70));
    }

    #[test]
    fn many_threads_pushing_lose_nothing_per_key() {
        let q = Arc::new(ConflatingQueue::with_merge(|a: u64, b: u64| a + b));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        q.push((t * 7 + i) % 16, 1);
                    }
                })
            })
            .collect();
        let mut total = 0;
        let mut popped = 0;
        while popped < 40_000 {
            if let Some((_, n)) = q.pop() {
                total += n;
                popped += n;
            }
            if threads.iter().all(|t| t.is_finished()) && q.is_empty() {
                break;
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        while let Some((_, n)) = q.pop() {
            total += n;
        }
        assert_eq!(total, 40_000);
    }
}
