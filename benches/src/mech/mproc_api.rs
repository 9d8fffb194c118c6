//! mproc's facade: [`QueueT`] (`mproc::Queue<T>`, two queues, one per direction) and
//! [`MprocPipe`] (`mproc::pipe()`, a duplex `Connection` pair, raw bytes as Python's
//! `send_bytes`/`recv_bytes`). The peer is an `mproc::Process` with the handles passed in its
//! arguments, as a user would write it. Blocking calls are the plain ones a user calls
//! (`get`, `put`, `recv_bytes_into`): they report `Disconnected` when the peer is gone, and
//! the `alarm` watchdog backs them up.

use std::marker::PhantomData;

use mproc::{Connection, Queue};

use crate::transport::{Payload, crossed, get_seq, halves, message_buf, put_seq, slots_for};
use crate::{BenchError, Deadline, Peer, Transport};

/// One end: the queue it puts on, the queue it gets from.
#[derive(Debug)]
pub struct QueueEnd<P: Payload> {
    tx: Queue<P>,
    rx: Queue<P>,
}

/// `mproc::Queue<P>`. Messages up to 1 KiB travel inline in the ring (`slot_size` is set
/// to fit them); 64 KiB ones go out of line through the queue's arena (sized for the ring).
#[derive(Debug)]
pub struct QueueT<P>(PhantomData<P>);

/// Builds one queue for `P`s.
pub fn queue_for<P: Payload>(capacity: u32) -> Result<Queue<P>, BenchError> {
    let mut b = Queue::<P>::builder().capacity(capacity);
    if P::SIZE <= 1024 {
        b = b.slot_size((P::SIZE as u32 + 16).max(mproc::queue::DEFAULT_SLOT_SIZE));
    } else {
        b = b.arena_size(2 * u64::from(capacity) * P::SIZE as u64 + (1 << 20));
    }
    b.create().map_err(crate::error::api)
}

impl<P: Payload> Transport for QueueT<P> {
    const NAME: &'static str = "mproc Queue";
    const BLOCKING: bool = true;
    type End = QueueEnd<P>;

    fn pair(size: usize) -> Result<(QueueEnd<P>, QueueEnd<P>), BenchError> {
        if size != P::SIZE {
            return Err(BenchError::Unsupported(format!(
                "QueueT<{}> for {size}-byte messages",
                std::any::type_name::<P>()
            )));
        }
        let a = queue_for::<P>(slots_for(size))?;
        let b = queue_for::<P>(slots_for(size))?;
        Ok(crossed(halves(a), halves(b), |_, tx, rx| QueueEnd {
            tx,
            rx,
        }))
    }

    #[inline]
    fn send(e: &mut QueueEnd<P>, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        e.tx.put(P::with_seq(seq)).map_err(crate::error::api)
    }

    #[inline]
    fn recv(e: &mut QueueEnd<P>, _: &Deadline) -> Result<u64, BenchError> {
        e.rx.get().map(|m| m.seq()).map_err(crate::error::api)
    }

    fn spawn<F>(end: QueueEnd<P>, body: F) -> Result<Peer, BenchError>
    where
        F: FnOnce(&mut QueueEnd<P>) -> Result<(), BenchError> + Send + 'static,
    {
        Peer::process(
            move |(tx, rx)| body(&mut QueueEnd { tx, rx }),
            (end.tx, end.rx),
        )
    }
}

/// One end of a duplex mproc pipe (bytes only: the message type is never used).
#[derive(Debug)]
pub struct PipeEnd {
    conn: Connection<Vec<u8>>,
    buf: Vec<u8>,
}

/// `mproc::pipe()`: `Connection::send_bytes` / `recv_bytes_into`.
#[derive(Debug)]
pub struct MprocPipe;

impl Transport for MprocPipe {
    const NAME: &'static str = "mproc Pipe";
    const BLOCKING: bool = true;
    type End = PipeEnd;

    fn pair(size: usize) -> Result<(PipeEnd, PipeEnd), BenchError> {
        let (a, b) = mproc::pipe::<Vec<u8>, Vec<u8>>().map_err(crate::error::api)?;
        Ok((
            PipeEnd {
                conn: a,
                buf: message_buf(size),
            },
            PipeEnd {
                conn: b,
                buf: message_buf(size),
            },
        ))
    }

    #[inline]
    fn send(e: &mut PipeEnd, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        e.conn.send_bytes(&e.buf).map_err(crate::error::api)
    }

    #[inline]
    fn recv(e: &mut PipeEnd, _: &Deadline) -> Result<u64, BenchError> {
        let n = e
            .conn
            .recv_bytes_into(&mut e.buf)
            .map_err(crate::error::api)?;
        get_seq(&e.buf[..n])
    }

    fn spawn<F>(end: PipeEnd, body: F) -> Result<Peer, BenchError>
    where
        F: FnOnce(&mut PipeEnd) -> Result<(), BenchError> + Send + 'static,
    {
        let size = end.buf.len();
        Peer::process(
            move |(conn,)| {
                body(&mut PipeEnd {
                    conn,
                    buf: message_buf(size),
                })
            },
            (end.conn,),
        )
    }
}
