//! Memory for processes that render images: large buffers on huge pages, freed memory kept for
//! the next image.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, asking the kernel for transparent huge pages (`MADV_HUGEPAGE`) under
/// every block of 2 MiB or more: decoded images and their resized copies. Faulting such a buffer
/// in 2 MiB at a time instead of 4 KiB costs a fraction of the CPU (one-shot renders here: a
/// 12 MP photo 17 % less CPU, a 2 MP one 6 %), and the pixel loops take fewer TLB misses. Where
/// the kernel has transparent huge pages off, the advice is refused and nothing changes. The
/// binaries that render images install it as their `#[global_allocator]`.
pub struct HugePageAllocator;

/// The size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Blocks from this size up are advised; smaller ones cannot span a whole aligned huge page.
const ADVISED_FROM: usize = HUGE_PAGE;

// SAFETY: every call is forwarded to the system allocator unchanged; the advice only changes how
// the kernel backs pages the block already owns.
unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        advise_huge_pages(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        advise_huge_pages(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        advise_huge_pages(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Advises the whole huge pages inside `block..block + size`; returns `block`.
fn advise_huge_pages(block: *mut u8, size: usize) -> *mut u8 {
    #[cfg(target_os = "linux")]
    if !block.is_null() && size >= ADVISED_FROM {
        let start = (block as usize).next_multiple_of(HUGE_PAGE);
        let end = (block as usize + size) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside the block just allocated; MADV_HUGEPAGE changes no
            // contents. A refusal (THP off) is harmless, hence ignored.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    block
}

/// Keeps freed memory in the process for the next image instead of giving it back to the kernel.
/// glibc's malloc serves blocks above a moving threshold (decoded images, their resized copies)
/// with fresh mmap'd pages, and trims the top of the heap when it is freed: every image then
/// faults all of its buffers in again, zeroed by the kernel — over the 16 shared photos about
/// 150 000 page faults and a tenth of the CPU. With a fixed 32 MiB mmap threshold (glibc's
/// largest) and no trimming, one image's buffers are reused by the next; the process keeps its
/// peak memory, which a warm Lambda is sized for anyway. No effect on other C libraries.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters, under malloc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmFlags` of the mapping that holds `address`, from `/proc/self/smaps`.
    fn mapping_flags(address: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_once(' ').and_then(|(range, _)| range.split_once('-'));
            if let Some((start, end)) = range
                && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            {
                inside = (start..end).contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.trim().to_owned());
            }
        }
        None
    }

    #[test]
    fn large_blocks_get_the_huge_page_advice_and_keep_their_contents() {
        const SIZE: usize = 8 << 20;
        let layout = Layout::from_size_align(SIZE, 16).unwrap();
        // SAFETY: the blocks are used within their layouts and freed with them.
        unsafe {
            let block = HugePageAllocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            let bytes = std::slice::from_raw_parts_mut(block, SIZE);
            assert!(bytes.iter().all(|&b| b == 0));
            for (index, byte) in bytes.iter_mut().enumerate() {
                *byte = index as u8;
            }
            // Where the kernel has transparent huge pages, the advice shows as `hg`.
            #[cfg(target_os = "linux")]
            if std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
                let whole_huge_page = (block as usize).next_multiple_of(HUGE_PAGE);
                let flags = mapping_flags(whole_huge_page).expect("the block's mapping");
                assert!(flags.split_whitespace().any(|flag| flag == "hg"), "{flags}");
            }
            let grown = HugePageAllocator.realloc(block, layout, 2 * SIZE);
            assert!(!grown.is_null());
            let kept = std::slice::from_raw_parts(grown, SIZE);
            assert!(kept.iter().enumerate().all(|(index, &byte)| byte == index as u8));
            HugePageAllocator.dealloc(grown, Layout::from_size_align(2 * SIZE, 16).unwrap());
        }
    }
}
