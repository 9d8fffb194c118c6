//! `crossbeam-channel` between two **threads** of one process: the in-process reference
//! (no process boundary, no shared-memory segment, no validation).

use std::marker::PhantomData;

use crossbeam_channel::{Receiver, Sender};

use crate::transport::{Payload, crossed, slots_for};
use crate::{BenchError, Deadline, Peer, Transport};

/// One end: a bounded sender and receiver.
#[derive(Debug)]
pub struct XbeamEnd<P> {
    tx: Sender<P>,
    rx: Receiver<P>,
}

/// `crossbeam_channel::bounded::<P>` (threads).
#[derive(Debug)]
pub struct Crossbeam<P>(PhantomData<P>);

impl<P: Payload> Transport for Crossbeam<P> {
    const NAME: &'static str = "crossbeam-channel (threads)";
    const BLOCKING: bool = true;
    const CROSS_PROCESS: bool = false;
    type End = XbeamEnd<P>;

    fn pair(size: usize) -> Result<(XbeamEnd<P>, XbeamEnd<P>), BenchError> {
        if size != P::SIZE {
            return Err(BenchError::Unsupported(format!("{size}-byte messages")));
        }
        let a = crossbeam_channel::bounded(slots_for(size) as usize);
        let b = crossbeam_channel::bounded(slots_for(size) as usize);
        Ok(crossed(a, b, |_, tx, rx| XbeamEnd { tx, rx }))
    }

    #[inline]
    fn send(e: &mut XbeamEnd<P>, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        e.tx.send(P::with_seq(seq))
            .map_err(|_| BenchError::Peer("disconnected".into()))
    }

    #[inline]
    fn recv(e: &mut XbeamEnd<P>, deadline: &Deadline) -> Result<u64, BenchError> {
        match e.rx.recv_deadline(deadline.instant()) {
            Ok(m) => Ok(m.seq()),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(BenchError::Timeout("a crossbeam message"))
            }
            Err(_) => Err(BenchError::Peer("disconnected".into())),
        }
    }

    fn spawn<F>(end: XbeamEnd<P>, body: F) -> Result<Peer, BenchError>
    where
        F: FnOnce(&mut XbeamEnd<P>) -> Result<(), BenchError> + Send + 'static,
    {
        let mut end = end;
        Ok(Peer::thread(move || body(&mut end)))
    }
}
