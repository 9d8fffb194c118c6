//! `mproc-benches`: mproc against every alternative, measured by the same code in one run.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`transport`] | [`Transport`]: create a pair, send a sequence number, receive one — the one abstraction every mechanism implements |
//! | [`body`] | the bench bodies over it: one-way [`throughput`](body::throughput), round-trip [`round_trip`](body::round_trip) (awake and after idle) |
//! | [`mech`] | the mechanisms: mproc `Queue` and `Pipe`, raw `mproc-ring` SPSC/record/MPMC, `pipe(2)`, Unix stream and seqpacket sockets, POSIX mq, a naive shared-memory ring, spin and futex floors, crossbeam-channel (threads); `ipc-channel` and `iceoryx2` behind the `peers` feature |
//! | [`batch`] | `Queue<u64>` batch throughput (`put_many` / `get_many`) across two processes |
//! | [`mpmc`] | many producers → many consumers over one mproc `Queue` |
//! | [`lock`] | `Lock` uncontended and cross-process hand-off against std, parking_lot and a robust process-shared `pthread_mutex_t` |
//! | [`footprint`] | allocations per message and the memory of a queue |
//! | [`peer`] | the other side of a measurement: a forked child (raw or `mproc::Process`) or a thread, always reaped with a deadline |
//! | [`report`] | the markdown report and the hand-written SVG chart |
//!
//! The criterion benches (`benches/*.rs`) and the report binary (`src/bin/report.rs`, run by
//! `cargo xtask bench`) call the same bodies. Nothing here asserts on time.
//!
//! # Example
//!
//! ```
//! use mproc_benches::{body, mech::Pipe2};
//!
//! // 1000 eight-byte messages through pipe(2) to a forked child and back, one at a time.
//! let lat = body::round_trip::<Pipe2>(8, 10, 100, None, body::no_allocs)?;
//! assert_eq!(lat.samples_ns.len(), 100);
//! assert!(lat.percentile(50.0) > 0.0);
//! # Ok::<(), mproc_benches::BenchError>(())
//! ```
#![deny(unsafe_code)]

pub mod batch;
pub mod body;
pub mod deadline;
pub mod error;
pub mod footprint;
pub mod lock;
pub mod mech;
pub mod mpmc;
pub mod peer;
pub mod report;
pub mod shm;
pub(crate) mod sync;
pub mod transport;

pub use deadline::{Deadline, Spin};
pub use error::BenchError;
pub use peer::Peer;
pub use transport::{Payload, Transport};
