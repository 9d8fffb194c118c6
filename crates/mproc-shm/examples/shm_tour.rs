//! A tour of mproc-shm: an anonymous segment shared with a forked child, which registers as
//! a participant and writes a greeting through the arena; the parent reads it and watches
//! the child's liveness flip when it exits.
//!
//! Run: `cargo run -p mproc-shm --example shm_tour`
#![allow(clippy::disallowed_types)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mproc_shm::{Arena, Offset, Segment, SegmentOptions};

/// The first 128 bytes of the region hold two words: the child's participant id and the
/// offset of its message (0 = not yet). The arena takes the rest.
fn mailbox(seg: &Segment, slot: u64) -> &AtomicU64 {
    let p = seg
        .resolve(Offset::<u64>::new(seg.region().offset() + slot * 8))
        .unwrap();
    // SAFETY: in bounds and aligned (checked by `resolve`), valid while `seg` lives, and
    // only ever accessed atomically.
    unsafe { AtomicU64::from_ptr(p.as_ptr()) }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seg = Arc::new(
        SegmentOptions::new()
            .len(1 << 20)
            .fingerprint(0x70_75_72)
            .create_anonymous()?,
    );
    let r = seg.region();
    let arena = Arena::init(seg.clone(), r.offset() + 128, r.len() as u64 - 128)?;
    let me = seg.register()?;
    println!("parent {} registered as {me}", std::process::id());

    // SAFETY: the child only touches the segment and exits with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = (|| -> Result<(), Box<dyn std::error::Error>> {
            let id = seg.register()?; // a forked child is a new participant
            let text = format!("hello from child {} ({id})", std::process::id());
            let block = arena.alloc(text.len(), 1)?;
            let p = arena.ptr(block, text.len())?;
            // SAFETY: `p` points at `text.len()` bytes we just allocated.
            unsafe {
                p.as_ptr()
                    .copy_from_nonoverlapping(text.as_ptr(), text.len())
            };
            mailbox(&seg, 0).store(u64::from(id.get()), Ordering::Relaxed);
            mailbox(&seg, 2).store(text.len() as u64, Ordering::Relaxed);
            // Release: publishes the message bytes and the words above to the parent.
            mailbox(&seg, 1).store(block.get(), Ordering::Release);
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        })()
        .map_or(1, |()| 0);
        // SAFETY: leave without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    // Acquire: pairs with the child's Release store of the message offset.
    let block = loop {
        match mailbox(&seg, 1).load(Ordering::Acquire) {
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            0 => return Err("the child never wrote".into()),
            off => break Offset::<u8>::new(off),
        }
    };
    let child = mailbox(&seg, 0).load(Ordering::Relaxed) as u32;
    let len = mailbox(&seg, 2).load(Ordering::Relaxed) as usize;
    let p = arena.ptr(block, len)?;
    // SAFETY: the child wrote `len` bytes there before publishing the offset.
    let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
    println!("parent read: {:?}", String::from_utf8_lossy(bytes));
    arena.free(block)?;
    println!("child alive while running: {}", seg.is_alive(child));

    let mut status = 0;
    // SAFETY: wait for our own child (it exits by itself after 200 ms).
    unsafe { libc::waitpid(pid, &mut status, 0) };
    println!("child exited; alive now: {}", seg.is_alive(child));
    println!("arena after: {:?}", arena.check()?);
    assert!(!seg.is_alive(child));
    Ok(())
}
