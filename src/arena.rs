//! The allocator of the static (musl) build. musl's malloc gives freed memory back to the kernel at
//! once, so a call that lives for a millisecond maps, faults in and unmaps the same pages dozens of
//! times while clap parses the command line. Small allocations are carved from a fixed arena in
//! `.bss` instead and never given back (the process is short-lived); anything past the arena goes to
//! the system allocator, so long calls such as a large flush still work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Enough for a whole sending call; `scripts/bench.sh` measures the difference.
const SIZE: usize = 512 * 1024;

/// A bump allocator over `SIZE` bytes, falling back to `System`.
pub struct Arena {
    memory: UnsafeCell<[u8; SIZE]>,
    next: AtomicUsize,
}

// SAFETY: `next` is only advanced with compare-exchange, so threads never get overlapping ranges.
unsafe impl Sync for Arena {}

impl Arena {
    /// An empty arena.
    pub const fn new() -> Arena {
        Arena {
            memory: UnsafeCell::new([0; SIZE]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        (self.base()..self.base() + SIZE).contains(&(ptr as usize))
    }

    /// Reserves `layout` in the arena, or `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + next).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > SIZE {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(current) => next = current,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}

// SAFETY: arena blocks are disjoint, aligned as asked, inside `memory`, and never reused; every other
// pointer comes from and goes back to `System` with its layout.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: forwarded with the caller's (non-zero-size) layout.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `System` allocated it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `System` allocated it with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` is non-zero and valid for this alignment, per `realloc`'s contract.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as in `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_disjoint_and_fall_back_when_full() {
        let arena = Box::new(Arena::new());
        unsafe {
            let a = arena.alloc(Layout::from_size_align(3, 1).unwrap());
            let b = arena.alloc(Layout::from_size_align(8, 64).unwrap());
            assert!(arena.owns(a) && arena.owns(b));
            assert_eq!(b as usize % 64, 0);
            assert!(b as usize >= a as usize + 3);
            a.write_bytes(1, 3);
            let grown = arena.realloc(a, Layout::from_size_align(3, 1).unwrap(), 100);
            assert_eq!(std::slice::from_raw_parts(grown, 3), [1, 1, 1]);

            let big = Layout::from_size_align(SIZE, 8).unwrap();
            let outside = arena.alloc(big);
            assert!(!outside.is_null() && !arena.owns(outside));
            arena.dealloc(outside, big);
        }
    }
}
