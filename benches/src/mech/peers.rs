//! Third-party peers behind the `peers` feature: `ipc-channel` (Servo's; Unix sockets with
//! fd passing underneath on Linux), as bytes channels, one per direction, inherited by a
//! forked child. The receiver gets a fresh `Vec<u8>` per message (ipc-channel's API).
//!
//! iceoryx2, the other `peers` transport, has its own module ([`super::iceoryx`]).

use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender};

use crate::transport::{Duplex, get_seq, put_seq};
use crate::{BenchError, Deadline, Transport};

/// `ipc_channel::ipc::bytes_channel()`.
#[derive(Debug)]
pub struct IpcChannel;

impl Transport for IpcChannel {
    const NAME: &'static str = "ipc-channel";
    const BLOCKING: bool = true;
    type End = Duplex<IpcBytesSender, IpcBytesReceiver>;

    fn pair(size: usize) -> Result<(Self::End, Self::End), BenchError> {
        let a = ipc::bytes_channel().map_err(crate::error::api)?;
        let b = ipc::bytes_channel().map_err(crate::error::api)?;
        Ok(Duplex::crossed(a, b, size))
    }

    fn send(e: &mut Self::End, seq: u64, _: &Deadline) -> Result<(), BenchError> {
        put_seq(&mut e.buf, seq);
        e.tx.send(&e.buf).map_err(crate::error::api)
    }

    /// Plain blocking `recv` (the bytes receiver has no timed variant): a dead peer closes
    /// its socket and ends it with an error; the `alarm` watchdog backs it up.
    fn recv(e: &mut Self::End, _: &Deadline) -> Result<u64, BenchError> {
        let v =
            e.rx.recv()
                .map_err(|err| crate::error::api(format!("{err:?}")))?;
        get_seq(&v)
    }
}
