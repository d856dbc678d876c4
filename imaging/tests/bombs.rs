//! Decompression bombs must be refused from the header, before any large allocation. This
//! binary counts the largest single allocation made while probing and rendering them.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use imgflow_imaging::{ImageError, Limits, RenditionSpec, probe, render};

struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

const ONE_MIB: usize = 1 << 20;

#[test]
fn bombs_are_refused_without_allocating() {
    let png = png_claiming(100_000, 100_000);
    let jpeg = jpeg_claiming(65_000, 65_000);
    for bytes in [png, jpeg] {
        LARGEST.store(0, Ordering::Relaxed);
        let probed = probe(&bytes, &Limits::default());
        assert!(matches!(probed, Err(ImageError::ImageTooLarge(_))), "{probed:?}");
        let rendered = render(&bytes, &RenditionSpec::defaults(), &Limits::default());
        assert!(matches!(rendered, Err(ImageError::ImageTooLarge(_))), "{rendered:?}");
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest < ONE_MIB, "largest allocation {largest} bytes");
    }
}
