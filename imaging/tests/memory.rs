//! Rendering a 24 MP photo must not hold several full-size buffers at once. This binary tracks
//! the peak of live heap bytes while rendering the default renditions.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use imgflow_imaging::{Limits, RenditionSpec, render};

struct PeakTracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

#[test]
fn a_24_megapixel_photo_renders_within_one_full_size_rgba_buffer() {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images/craft_beer_6000x4000_progressive.jpg"));
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let renditions = render(&bytes, &RenditionSpec::defaults(), &Limits::default()).unwrap();
    assert_eq!(renditions.len(), 2);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let full_size_rgba = 6000 * 4000 * 4;
    eprintln!("peak live heap during render: {} MB", peak >> 20);
    assert!(peak < full_size_rgba, "peak {peak} bytes, one full-size RGBA buffer is {full_size_rgba}");
}
