//! Attacks segment validation: arbitrary bytes as a segment file, or a valid segment with
//! arbitrary patches to its header and participant table. Opening must return `Ok` or a
//! clean error, never panic, hang or fault; an accepted segment must stay safe to use.
#![no_main]

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mproc_shm::{Offset, SegmentOptions};

#[derive(Arbitrary, Debug)]
struct Input {
    expected_fingerprint: u64,
    source: Source,
    /// Offsets to resolve and ids to query if the segment is accepted.
    probes: Vec<(u64, u32)>,
}

#[derive(Arbitrary, Debug)]
enum Source {
    /// The whole file, byte for byte (at most 64 KiB).
    Raw(Vec<u8>),
    /// A valid segment, then patches written over its first 1 KiB.
    Patched { participants: u8, fingerprint_matches: bool, patches: Vec<(u16, u8)> },
}

fn temp_file(bytes: &[u8]) -> OwnedFd {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = format!(
        "/dev/shm/mproc-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create temp file");
    let _ = std::fs::remove_file(&path);
    file.write_all_at(bytes, 0).expect("write temp file");
    file.into()
}

fuzz_target!(|input: Input| {
    let fd = match &input.source {
        Source::Raw(bytes) => temp_file(&bytes[..bytes.len().min(64 * 1024)]),
        Source::Patched { participants, fingerprint_matches, patches } => {
            let fp = if *fingerprint_matches {
                input.expected_fingerprint
            } else {
                !input.expected_fingerprint
            };
            let seg = SegmentOptions::new()
                .participants(u32::from(*participants).max(1))
                .fingerprint(fp)
                .create_anonymous()
                .expect("create");
            let file = File::from(seg.as_fd().try_clone_to_owned().expect("dup"));
            for &(at, byte) in patches {
                let _ = file.write_all_at(&[byte], u64::from(at % 1024));
            }
            file.into()
        }
    };
    let opened = SegmentOptions::new()
        .fingerprint(input.expected_fingerprint)
        .open_timeout(Duration::ZERO)
        .open_fd(fd);
    let Ok(seg) = opened else { return };
    // Accepted: every accessor must stay in bounds.
    let region = seg.region();
    assert!(region.offset() as usize + region.len() <= seg.len());
    let _ = seg.register();
    for &(off, id) in input.probes.iter().take(16) {
        if let Ok(p) = seg.resolve(Offset::<u64>::new(off)) {
            // SAFETY: `resolve` checked bounds and alignment; the mapping is ours.
            let _ = unsafe { p.as_ptr().read_volatile() };
        }
        let _ = seg.resolve_slice(Offset::<u32>::new(off), id as usize);
        let _ = seg.is_alive(id);
    }
});
