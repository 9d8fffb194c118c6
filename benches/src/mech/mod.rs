//! Every mechanism, one [`Transport`](crate::Transport) each.

pub mod fd;
pub mod flag;
#[cfg(feature = "peers")]
pub mod iceoryx;
pub mod lamport;
pub mod mproc_api;
pub mod mq;
#[cfg(feature = "peers")]
pub mod peers;
pub mod ring;
pub mod xbeam;

pub use fd::{Pipe2, SeqPacket, UnixStream};
pub use flag::{FutexFlag, SpinFlag};
#[cfg(feature = "peers")]
pub use iceoryx::Iceoryx2;
pub use lamport::Lamport;
pub use mproc_api::{MprocPipe, QueueT, queue_for};
pub use mq::PosixMq;
#[cfg(feature = "peers")]
pub use peers::IpcChannel;
pub use ring::{RawMpmc, RawRecord, RawSpsc};
pub use xbeam::Crossbeam;
