//! The one abstraction every mechanism implements: create a connected pair, send a
//! sequence number, receive one. The bench bodies ([`crate::body`]) are written once over it,
//! so no mechanism gets an easier loop.

use crate::{BenchError, Deadline, Peer};

/// A way to move fixed-size messages between two parties.
///
/// A message is `size` bytes whose first 8 carry a sequence number (little endian); the
/// receiver checks it, so a transport that drops or reorders messages fails its run.
/// Implementations are zero-sized markers; the state lives in [`Transport::End`].
pub trait Transport {
    /// Name in reports.
    const NAME: &'static str;
    /// Whether an idle receiver sleeps in the kernel (futex, blocking syscall). Spinning
    /// transports (the raw rings, the Lamport ring, the spin flag) are left out of the
    /// after-idle latency table: they never sleep, they burn a core.
    const BLOCKING: bool;
    /// Whether the peer runs in another process (false: a thread, for reference).
    const CROSS_PROCESS: bool = true;

    /// One end of a connection: it can both send and receive.
    type End;

    /// Creates a connected pair of ends for `size`-byte messages.
    ///
    /// # Errors
    /// [`BenchError::Unsupported`] when the mechanism cannot carry `size`-byte messages here.
    fn pair(size: usize) -> Result<(Self::End, Self::End), BenchError>;

    /// Sends message number `seq` (blocking while full).
    ///
    /// # Errors
    /// The mechanism's error, or a timeout at `deadline`.
    fn send(end: &mut Self::End, seq: u64, deadline: &Deadline) -> Result<(), BenchError>;

    /// Receives the next message and returns its sequence number (blocking while empty).
    ///
    /// # Errors
    /// The mechanism's error (including the peer being gone), or a timeout at `deadline`.
    fn recv(end: &mut Self::End, deadline: &Deadline) -> Result<u64, BenchError>;

    /// Runs `body` with `end` in the peer: by default a raw `fork(2)` child.
    ///
    /// # Errors
    /// The peer could not be started.
    fn spawn<F>(end: Self::End, body: F) -> Result<Peer, BenchError>
    where
        F: FnOnce(&mut Self::End) -> Result<(), BenchError> + Send + 'static,
    {
        let mut end = end;
        Peer::fork(move || body(&mut end))
    }
}

/// Writes `seq` into the first 8 bytes of `buf` (which is at least 8 bytes).
#[inline]
pub fn put_seq(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Reads the sequence number from the first 8 bytes of `buf`.
///
/// # Errors
/// [`BenchError::Corrupt`] if `buf` is shorter than 8 bytes.
#[inline]
pub fn get_seq(buf: &[u8]) -> Result<u64, BenchError> {
    match buf.get(..8) {
        Some(b) => Ok(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        None => Err(BenchError::Corrupt(format!("{} bytes", buf.len()))),
    }
}

/// A message buffer of `size` bytes (at least 8), filled with a pattern.
pub fn message_buf(size: usize) -> Vec<u8> {
    vec![0x5A; size.max(8)]
}

/// The two ends of a pair over one one-way channel per direction, `a` (end 0 to end 1) and
/// `b` (end 1 to end 0), each given as its (sending, receiving) halves: `end(side, tx, rx)`
/// builds end `side`, which sends on its own channel and receives on the other's.
pub(crate) fn crossed<T, R, E>(a: (T, R), b: (T, R), end: impl Fn(u32, T, R) -> E) -> (E, E) {
    let ((a_tx, a_rx), (b_tx, b_rx)) = (a, b);
    (end(0, a_tx, b_rx), end(1, b_tx, a_rx))
}

/// One end of a pair of byte channels, one per direction: the handle it sends on, the one it
/// receives from (the same socket twice for a socketpair), and its message buffer.
#[derive(Debug)]
pub struct Duplex<T, R = T> {
    pub(crate) tx: T,
    pub(crate) rx: R,
    pub(crate) buf: Vec<u8>,
}

impl<T, R> Duplex<T, R> {
    /// An end that sends on `tx` and receives on `rx` `size`-byte messages.
    pub(crate) fn new(tx: T, rx: R, size: usize) -> Self {
        Duplex {
            tx,
            rx,
            buf: message_buf(size),
        }
    }

    /// The two ends over one channel per direction, each given as its (sending, receiving)
    /// halves, wired as `crossed` does.
    pub(crate) fn crossed(a: (T, R), b: (T, R), size: usize) -> (Self, Self) {
        crossed(a, b, |_, tx, rx| Duplex::new(tx, rx, size))
    }
}

/// Both halves of a channel that one handle sends on and receives from (a clone each).
pub(crate) fn halves<C: Clone>(channel: C) -> (C, C) {
    (channel.clone(), channel)
}

/// A typed message for the typed transports (mproc `Queue<T>`, crossbeam's `Sender<T>`).
pub trait Payload: mproc::Message + Copy + Send + 'static {
    /// Bytes of the message.
    const SIZE: usize;
    /// Message number `seq`.
    fn with_seq(seq: u64) -> Self;
    /// Its number.
    fn seq(&self) -> u64;
}

impl Payload for u64 {
    const SIZE: usize = 8;
    #[inline]
    fn with_seq(seq: u64) -> Self {
        seq
    }
    #[inline]
    fn seq(&self) -> u64 {
        *self
    }
}

macro_rules! array_payload {
    ($($n:literal),*) => {$(
        impl Payload for [u8; $n] {
            const SIZE: usize = $n;
            #[inline]
            fn with_seq(seq: u64) -> Self {
                let mut a = [0x5A; $n];
                put_seq(&mut a, seq);
                a
            }
            #[inline]
            fn seq(&self) -> u64 {
                u64::from_le_bytes(self[..8].try_into().expect("8 bytes"))
            }
        }
    )*};
}
array_payload!(64, 1024, 65536);

/// Slots per ring for `size`-byte messages, the same for every ring-based transport
/// (mproc `Queue`, the raw rings, the Lamport ring, crossbeam's bounded channel): 256, as
/// `Queue`'s default, and 16 for messages over 1 KiB (64 KiB × 16 = 1 MiB per direction).
pub fn slots_for(size: usize) -> u32 {
    if size <= 1024 { 256 } else { 16 }
}
