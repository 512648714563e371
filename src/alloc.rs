//! The binaries' allocator: mimalloc, with blocks of [`LARGE`] bytes and more mapped on their
//! own so that growing one moves its pages instead of copying them.
//!
//! Why. A vector that doubles is copied whole into a new block: mimalloc (like most
//! allocators) reallocates a large block by allocating, copying and freeing. A replica that
//! never compacts keeps its whole log in one vector, and at a few million entries one doubling
//! copied hundreds of megabytes into freshly zeroed pages. The follower doing it stopped
//! answering for longer than an election timeout, so a run with `--snapshot-every off` under
//! load changed leaders over and over (measurements: the README's "Snapshots"). glibc's
//! malloc avoids the copy for blocks above its mmap threshold with `mremap`, which moves
//! page-table entries; this does the same above [`LARGE`] and leaves everything smaller to
//! the inner allocator, where mimalloc's per-thread heaps pay off.
//!
//! Which path a block takes depends only on its layout (size at least [`LARGE`], alignment
//! at most a page), so `dealloc` and `realloc`, which get the layout the block was made
//! with, always find the path that made it.

use std::alloc::{GlobalAlloc, Layout};

/// Blocks at least this large are mapped on their own (and grown with `mremap`).
pub const LARGE: usize = 4 << 20;

/// Mapped blocks are aligned to the page; a larger alignment stays with the inner allocator.
const PAGE: usize = 4096;

/// `A` for blocks below [`LARGE`], anonymous mappings for blocks at or above it (on Linux;
/// elsewhere `A` alone).
#[derive(Debug, Default)]
pub struct RemapLarge<A>(pub A);

#[cfg(target_os = "linux")]
fn mapped(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

#[cfg(not(target_os = "linux"))]
fn mapped(_: Layout) -> bool {
    false
}

/// The mapping's length for a block of `size` bytes: whole pages.
fn pages(size: usize) -> usize {
    size.div_ceil(PAGE) * PAGE
}

#[cfg(target_os = "linux")]
unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory; failure is reported as MAP_FAILED, turned into null here.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages(size),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

#[cfg(target_os = "linux")]
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: the caller passes a block `map` or `remap` made for `size` bytes.
    let rc = unsafe { libc::munmap(ptr.cast(), pages(size)) };
    debug_assert_eq!(rc, 0, "munmap of a block this allocator mapped");
}

#[cfg(target_os = "linux")]
unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
    // SAFETY: `ptr` is a mapping of `pages(old)` bytes this allocator made; MREMAP_MAYMOVE
    // lets the kernel move it, which the caller accepts by using the returned address.
    let p = unsafe { libc::mremap(ptr.cast(), pages(old), pages(new), libc::MREMAP_MAYMOVE) };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

#[cfg(not(target_os = "linux"))]
unsafe fn map(_: usize) -> *mut u8 {
    unreachable!("no block is mapped off Linux")
}

#[cfg(not(target_os = "linux"))]
unsafe fn unmap(_: *mut u8, _: usize) {
    unreachable!("no block is mapped off Linux")
}

#[cfg(not(target_os = "linux"))]
unsafe fn remap(_: *mut u8, _: usize, _: usize) -> *mut u8 {
    unreachable!("no block is mapped off Linux")
}

// SAFETY: every block is made and released by one path, chosen by `mapped(layout)` alone;
// the mapped path returns page-aligned, zero-filled blocks of at least the size asked, and
// the moves between paths in `realloc` copy the bytes both sizes hold.
unsafe impl<A: GlobalAlloc> GlobalAlloc for RemapLarge<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { self.0.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            // Fresh anonymous pages read as zero.
            unsafe { map(layout.size()) }
        } else {
            unsafe { self.0.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout) {
            unsafe { unmap(ptr, layout.size()) }
        } else {
            unsafe { self.0.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (for the caller's contract): `new_size` with `layout.align()` is a valid
        // layout, so this cannot fail.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(layout), mapped(new_layout)) {
            (false, false) => unsafe { self.0.realloc(ptr, layout, new_size) },
            (true, true) => unsafe { remap(ptr, layout.size(), new_size) },
            (from_mapped, _) => {
                // Across the threshold: a new block on the other path, the common bytes
                // copied, the old block released on its own path.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    let common = layout.size().min(new_size);
                    unsafe { std::ptr::copy_nonoverlapping(ptr, new, common) };
                    if from_mapped {
                        unsafe { unmap(ptr, layout.size()) }
                    } else {
                        unsafe { self.0.dealloc(ptr, layout) }
                    }
                }
                new
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::alloc::System;

    static A: RemapLarge<System> = RemapLarge(System);

    fn fill(p: *mut u8, n: usize) {
        for i in (0..n).step_by(997) {
            unsafe { *p.add(i) = (i % 251) as u8 };
        }
    }

    fn holds(p: *const u8, n: usize) -> bool {
        (0..n)
            .step_by(997)
            .all(|i| unsafe { *p.add(i) } == (i % 251) as u8)
    }

    #[test]
    fn a_block_keeps_its_bytes_as_it_grows_across_the_threshold_and_shrinks_back() {
        let small = Layout::from_size_align(LARGE / 2, 8).unwrap();
        let p = unsafe { A.alloc(small) };
        assert!(!p.is_null());
        fill(p, small.size());
        // Small to mapped: copied.
        let p = unsafe { A.realloc(p, small, LARGE) };
        assert!(!p.is_null() && holds(p, small.size()));
        assert_eq!(p as usize % PAGE, 0, "a mapped block starts a page");
        let big = Layout::from_size_align(LARGE, 8).unwrap();
        fill(p, LARGE);
        // Mapped to mapped: remapped, four times as large, the bytes still there.
        let p = unsafe { A.realloc(p, big, 4 * LARGE + 5) };
        assert!(!p.is_null() && holds(p, LARGE));
        let bigger = Layout::from_size_align(4 * LARGE + 5, 8).unwrap();
        fill(p, bigger.size());
        // Mapped to small: the first bytes copied back.
        let p = unsafe { A.realloc(p, bigger, 1000) };
        assert!(!p.is_null() && holds(p, 1000));
        unsafe { A.dealloc(p, Layout::from_size_align(1000, 8).unwrap()) };
    }

    #[test]
    fn a_zeroed_mapped_block_reads_zero_and_a_page_plus_alignment_is_not_mapped() {
        let l = Layout::from_size_align(LARGE + 1, 16).unwrap();
        let p = unsafe { A.alloc_zeroed(l) };
        assert!(!p.is_null());
        assert!((0..l.size())
            .step_by(4093)
            .all(|i| unsafe { *p.add(i) } == 0));
        unsafe { A.dealloc(p, l) };
        // An alignment above a page stays with the inner allocator.
        let odd = Layout::from_size_align(LARGE, 2 * PAGE).unwrap();
        assert!(!mapped(odd));
        let p = unsafe { A.alloc(odd) };
        assert!(!p.is_null() && p as usize % (2 * PAGE) == 0);
        unsafe { A.dealloc(p, odd) };
    }
}
