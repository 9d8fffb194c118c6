//! Message framing over a [`RecordRing`](mproc_ring::RecordRing): any message size, streamed
//! in fragments when it is larger than a record.
//!
//! A message is one or more records. The first record starts with the message's total length
//! (`u64`, little-endian) followed by the first bytes of the message; every record but the
//! last carries the ring's `more_follows` flag; continuation records are raw bytes. Small
//! messages are one record. The reader reassembles the message in a private, 16-byte aligned
//! buffer (rkyv's alignment), and hands it out only once the last fragment arrived: nothing
//! is ever returned in part (Python's pitfall P9, a torn frame, cannot happen).
//!
//! Everything read is untrusted: a total length is only a hint for how much to reserve (capped),
//! the assembled length must equal it exactly, and a violation drops the message, counts it,
//! and skips the rest of that message (up to a record without `more_follows`), so the stream
//! resynchronises on the next message.

use mproc_core::shared::copy_from_shared;
use mproc_ring::{ReadError, RecordReader, RecordWriter, WriteError};
use rkyv::util::AlignedVec;

/// Bytes of the first-record header (the total length).
const HEADER: usize = 8;

/// Most bytes reserved up front from an (untrusted) total length; the buffer grows beyond
/// it only as real bytes arrive.
const MAX_RESERVE: u64 = 1 << 20;

/// Largest payload per record used by the writer: a quarter of the ring (so the writer can
/// fill one record while the reader copies another), at most the ring's record limit.
pub(super) fn fragment_len(w: &RecordWriter, ring_capacity: u32) -> usize {
    let quarter = (ring_capacity / 4) as usize;
    quarter
        .saturating_sub(8)
        .clamp(HEADER + 1, w.max_record_len())
}

/// Progress of one message being streamed out.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Outgoing {
    /// Bytes of the message already written.
    sent: usize,
    /// Whether the first record (with the header) was written.
    started: bool,
}

/// What [`push`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pushed {
    /// The whole message is in the ring.
    pub(super) done: bool,
    /// At least one record was published (the reader should be woken).
    pub(super) progressed: bool,
}

/// Writes as much of `msg` as fits now, resuming from `st`.
///
/// # Errors
/// `Corrupt` when the reader's index is invalid.
pub(super) fn push(
    w: &mut RecordWriter,
    frag: usize,
    msg: &[u8],
    st: &mut Outgoing,
) -> Result<Pushed, WriteError> {
    let mut progressed = false;
    if !st.started {
        let first = msg.len().min(frag - HEADER);
        let more = first < msg.len();
        let mut r = match w.reserve(HEADER + first) {
            Ok(r) => r,
            Err(WriteError::Full) => {
                return Ok(Pushed {
                    done: false,
                    progressed,
                });
            }
            Err(e) => return Err(e),
        };
        let buf = r.bytes_mut();
        buf[..HEADER].copy_from_slice(&(msg.len() as u64).to_le_bytes());
        buf[HEADER..].copy_from_slice(&msg[..first]);
        r.commit_len(HEADER + first, more);
        st.started = true;
        st.sent = first;
        progressed = true;
    }
    while st.sent < msg.len() {
        let n = (msg.len() - st.sent).min(frag);
        let more = st.sent + n < msg.len();
        match w.try_write_fragment(&msg[st.sent..st.sent + n], more) {
            Ok(()) => {
                st.sent += n;
                progressed = true;
            }
            Err(WriteError::Full) => {
                return Ok(Pushed {
                    done: false,
                    progressed,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Pushed {
        done: true,
        progressed,
    })
}

/// Reader-side reassembly state of one connection end (process-local; travels with the end
/// when it is passed to a child).
#[derive(Debug, Default)]
pub(super) struct Assembler {
    /// Bytes of the message assembled so far (16-aligned for rkyv).
    buf: AlignedVec,
    /// Total length announced by the current message's first record.
    total: Option<u64>,
    /// `buf` holds one whole message.
    complete: bool,
    /// Dropping the rest of a corrupt message, up to its last record.
    skipping: bool,
    /// Messages dropped because they were malformed, or torn by a writer's death.
    pub(super) dropped: u64,
}

/// What [`Assembler::pull`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pulled {
    /// A whole message is ready ([`Assembler::message`]).
    Complete,
    /// The ring ran dry before a whole message arrived.
    Empty,
    /// The message being assembled announced more bytes than the caller's limit; what was
    /// read of it stays buffered (a later call with a larger limit continues).
    TooLong(u64),
}

impl Assembler {
    /// Whether a whole message is ready.
    pub(super) fn is_complete(&self) -> bool {
        self.complete
    }

    /// The length announced by the message being assembled (or ready), if its first record
    /// has arrived.
    #[cfg(test)]
    pub(super) fn announced(&self) -> Option<u64> {
        self.total
    }

    /// Whether part of a message has been received (its writer is mid-stream).
    pub(super) fn is_partial(&self) -> bool {
        !self.complete && (self.total.is_some() || self.skipping)
    }

    /// The ready message (empty unless [`Assembler::is_complete`]).
    pub(super) fn message(&self) -> &[u8] {
        if self.complete { &self.buf } else { &[] }
    }

    /// Releases the ready message so the next one can be assembled.
    pub(super) fn consume(&mut self) {
        self.reset();
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.total = None;
        self.complete = false;
    }

    /// Drops a message torn by its writer's death (called once the writer is known gone).
    pub(super) fn discard_partial(&mut self) {
        if self.is_partial() {
            self.dropped += 1;
            self.reset();
            self.skipping = false;
        }
    }

    /// Reads records until a whole message is assembled or the ring is empty. `consumed` is
    /// set when at least one record was taken (the writer should be woken).
    ///
    /// # Errors
    /// `Corrupt`: a malformed record or message (dropped; the stream resynchronises).
    #[cfg(test)]
    pub(super) fn pull(
        &mut self,
        r: &mut RecordReader,
        consumed: &mut bool,
    ) -> Result<Pulled, ReadError> {
        self.pull_limited(r, consumed, u64::MAX)
    }

    /// As `pull`, but stops (without reading further) once the message being assembled
    /// announces more than `limit` bytes: [`Pulled::TooLong`].
    ///
    /// # Errors
    /// As `pull`.
    pub(super) fn pull_limited(
        &mut self,
        r: &mut RecordReader,
        consumed: &mut bool,
        limit: u64,
    ) -> Result<Pulled, ReadError> {
        while !self.complete {
            if let Some(total) = self.total
                && total > limit
            {
                return Ok(Pulled::TooLong(total));
            }
            let rec = match r.try_read() {
                Ok(rec) => rec,
                Err(ReadError::Empty) => return Ok(Pulled::Empty),
                // `ReadError` is non-exhaustive: anything but `Empty` is treated as corruption.
                Err(_) => {
                    *consumed = true;
                    self.corrupt(false);
                    return Err(ReadError::Corrupt);
                }
            };
            *consumed = true;
            let more = rec.more_follows();
            // Read only through atomics (`copy_from_shared`): the writer never touches a
            // record before we drop it, but a hostile one could, and then it changes what we
            // read (validated on the private copy), never makes reading it undefined.
            let bytes = rec.shared();
            if self.skipping {
                self.skipping = more;
                continue;
            }
            let data = match self.total {
                None => {
                    let Some((head, data)) = bytes.split_first_chunk::<HEADER>() else {
                        drop(rec);
                        self.corrupt(more);
                        return Err(ReadError::Corrupt);
                    };
                    let mut len = [0u8; HEADER];
                    copy_from_shared(&mut len, head);
                    let total = u64::from_le_bytes(len);
                    self.total = Some(total);
                    self.buf.reserve(total.min(MAX_RESERVE) as usize);
                    data
                }
                Some(_) => bytes,
            };
            let total = self.total.unwrap_or(0);
            let new_len = self.buf.len() as u64 + data.len() as u64;
            let bad = new_len > total
                || (more && new_len == total && !data.is_empty())
                || (!more && new_len != total);
            if bad {
                drop(rec);
                self.corrupt(more);
                return Err(ReadError::Corrupt);
            }
            let at = self.buf.len();
            self.buf.resize(at + data.len(), 0);
            copy_from_shared(&mut self.buf[at..], data);
            drop(rec);
            if !more {
                self.complete = true;
            }
        }
        Ok(Pulled::Complete)
    }

    fn corrupt(&mut self, rest_follows: bool) {
        self.dropped += 1;
        self.reset();
        self.skipping = rest_follows;
    }

    /// The state to hand to a spawned child: `(partial bytes, total, complete, skipping)`.
    pub(super) fn export(&self) -> (Vec<u8>, Option<u64>, bool, bool, u64) {
        (
            self.buf.to_vec(),
            self.total,
            self.complete,
            self.skipping,
            self.dropped,
        )
    }

    /// Rebuilds the state exported by [`Assembler::export`], checking it is consistent.
    pub(super) fn import(state: (Vec<u8>, Option<u64>, bool, bool, u64)) -> Option<Assembler> {
        let (bytes, total, complete, skipping, dropped) = state;
        let len = bytes.len() as u64;
        let ok = match total {
            None => bytes.is_empty() && !complete,
            Some(t) => len <= t && (!complete || len == t) && !skipping,
        };
        if !ok {
            return None;
        }
        let mut buf = AlignedVec::with_capacity(bytes.len());
        buf.extend_from_slice(&bytes);
        Some(Assembler {
            buf,
            total,
            complete,
            skipping,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mproc_ring::{ParticipantId, RecordRing, RecordShape};

    fn ring(cap: u32) -> (RecordWriter, RecordReader, u32) {
        let ring = RecordRing::new(RecordShape { capacity: cap }).unwrap();
        let w = ring.claim_writer(ParticipantId::new(1).unwrap()).unwrap();
        let r = ring.claim_reader(ParticipantId::new(2).unwrap()).unwrap();
        (w, r, cap)
    }

    /// Streams `msgs` through a small ring, interleaving writer and reader.
    fn roundtrip(cap: u32, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let (mut w, mut r, cap) = ring(cap);
        let frag = fragment_len(&w, cap);
        let mut a = Assembler::default();
        let mut out = Vec::new();
        for m in msgs {
            let mut st = Outgoing::default();
            let mut rounds = 0;
            loop {
                let p = push(&mut w, frag, m, &mut st).unwrap();
                let mut consumed = false;
                if a.pull(&mut r, &mut consumed).unwrap() == Pulled::Complete {
                    out.push(a.message().to_vec());
                    a.consume();
                }
                if p.done && !a.is_partial() {
                    break;
                }
                rounds += 1;
                assert!(rounds < 1_000_000, "no progress");
            }
        }
        let mut consumed = false;
        while a.pull(&mut r, &mut consumed).unwrap() == Pulled::Complete {
            out.push(a.message().to_vec());
            a.consume();
        }
        out
    }

    #[test]
    fn small_empty_and_large_messages_roundtrip() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let msgs = vec![b"hello".to_vec(), Vec::new(), big.clone(), vec![9; 47], big];
        assert_eq!(roundtrip(4096, &msgs), msgs);
    }

    #[test]
    fn every_length_around_fragment_boundaries() {
        let msgs: Vec<Vec<u8>> = (0..600usize).map(|n| vec![n as u8; n]).collect();
        assert_eq!(roundtrip(256, &msgs), msgs);
    }

    #[test]
    fn message_is_never_visible_in_part() {
        let (mut w, mut r, cap) = ring(256);
        let frag = fragment_len(&w, cap);
        let msg = vec![5u8; 1000];
        let mut st = Outgoing::default();
        let mut a = Assembler::default();
        let p = push(&mut w, frag, &msg, &mut st).unwrap();
        assert!(!p.done && p.progressed);
        let mut consumed = false;
        assert_eq!(a.pull(&mut r, &mut consumed).unwrap(), Pulled::Empty);
        assert!(a.is_partial() && !a.is_complete() && a.message().is_empty());
        a.discard_partial();
        assert_eq!(a.dropped, 1);
        assert!(!a.is_partial());
    }

    #[test]
    fn bad_total_is_corrupt_and_stream_resynchronises() {
        let (mut w, mut r, _) = ring(256);
        // First record claims 4 bytes but carries 6 and says it is the last.
        let mut bad = 4u64.to_le_bytes().to_vec();
        bad.extend_from_slice(b"abcdef");
        w.try_write(&bad).unwrap();
        // A torn message: more_follows, then a fresh message (continuation never came).
        let mut torn = 100u64.to_le_bytes().to_vec();
        torn.extend_from_slice(b"xy");
        w.try_write_fragment(&torn, true).unwrap();
        w.try_write_fragment(b"zz", false).unwrap();
        let mut good = 2u64.to_le_bytes().to_vec();
        good.extend_from_slice(b"ok");
        w.try_write(&good).unwrap();
        // A record shorter than the header.
        w.try_write(b"abc").unwrap();
        w.try_write(&good).unwrap();

        let mut a = Assembler::default();
        let mut c = false;
        assert_eq!(a.pull(&mut r, &mut c), Err(ReadError::Corrupt));
        assert_eq!(a.pull(&mut r, &mut c), Err(ReadError::Corrupt));
        assert_eq!(a.pull(&mut r, &mut c), Ok(Pulled::Complete));
        assert_eq!(a.message(), b"ok");
        a.consume();
        assert_eq!(a.pull(&mut r, &mut c), Err(ReadError::Corrupt));
        assert_eq!(a.pull(&mut r, &mut c), Ok(Pulled::Complete));
        assert_eq!(a.message(), b"ok");
        assert_eq!(a.dropped, 3);
    }

    #[test]
    fn limit_stops_before_pulling_the_rest() {
        let (mut w, mut r, cap) = ring(1024);
        let frag = fragment_len(&w, cap);
        let msg = vec![1u8; 600];
        let mut st = Outgoing::default();
        assert!(push(&mut w, frag, &msg, &mut st).unwrap().progressed);
        let mut a = Assembler::default();
        let mut c = false;
        assert_eq!(
            a.pull_limited(&mut r, &mut c, 100),
            Ok(Pulled::TooLong(600))
        );
        assert_eq!(a.announced(), Some(600));
        assert_eq!(
            a.pull_limited(&mut r, &mut c, 599),
            Ok(Pulled::TooLong(600))
        );
        let mut rounds = 0;
        loop {
            push(&mut w, frag, &msg, &mut st).unwrap();
            if a.pull_limited(&mut r, &mut c, 600).unwrap() == Pulled::Complete {
                break;
            }
            rounds += 1;
            assert!(rounds < 100);
        }
        assert_eq!(a.message(), &msg[..]);
    }

    #[test]
    fn export_import_checks_consistency() {
        let a = Assembler::default();
        assert!(Assembler::import(a.export()).is_some());
        assert!(Assembler::import((vec![1, 2], None, false, false, 0)).is_none());
        assert!(Assembler::import((vec![1, 2], Some(1), false, false, 0)).is_none());
        assert!(Assembler::import((vec![1], Some(2), true, false, 0)).is_none());
        let b = Assembler::import((vec![1, 2], Some(2), true, false, 0)).unwrap();
        assert_eq!(b.message(), &[1, 2]);
    }
}
