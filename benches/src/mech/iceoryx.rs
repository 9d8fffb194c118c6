//! iceoryx2 (Eclipse's zero-copy shared-memory IPC) behind the `peers` feature: two
//! publish-subscribe services per pair, one per direction, carrying `[u8]` slices of the
//! message size (8 B to 64 KiB), over iceoryx2's `ipc::Service` (POSIX shared memory).
//!
//! * **Lazy ports.** `pair` only picks two unique service names; each process creates its
//!   own node, services, publisher and subscriber on its first `send` or `recv`, after the
//!   fork (an iceoryx2 node is tied to its process: its id, its shared-memory registrations
//!   and its dead-node detection are per pid, so none is created before `fork`).
//! * **No lost first message.** A publisher delivers only to subscribers connected when it
//!   sends, so the first `send` waits (bounded) until the peer's subscriber has registered,
//!   then connects; every later `send` checks it reached one subscriber.
//! * **Back-pressure** is iceoryx2's own `RetryUntilDelivered` (no safe overflow): a full
//!   subscriber queue makes the publisher retry with its adaptive wait (yield, then short
//!   sleeps), bounded by a back-pressure handler that fails the send at the measurement's
//!   deadline. Queue depth: [`slots_for`] (256, 16 for 64 KiB), as the rings.
//! * **Receive** busy-polls `Subscriber::receive` with [`Spin`] (so `BLOCKING = false`: it
//!   never sleeps, and is left out of the after-idle table) and copies the payload out, as
//!   every other transport's receive does (a reader that only peeked at the first 8 bytes
//!   in place would be faster for large messages; that is iceoryx2's zero-copy advantage,
//!   not measured here).
//! * The publisher writes the whole message into a loaned sample (`loan_slice_uninit` +
//!   `write_from_slice`), the one copy every other transport makes on send too.

use std::time::Instant;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::port::{BackpressureAction, BackpressureInfo};
use iceoryx2::prelude::*;
use iceoryx2::service::builder::publish_subscribe::PublishSubscribeOpenOrCreateError;
use iceoryx2::service::port_factory::publish_subscribe;

use crate::sync::{AtomicU32, Ordering};
use crate::transport::{crossed, get_seq, halves, message_buf, put_seq, slots_for};
use crate::{BenchError, Deadline, Spin, Transport};

type Svc = ipc::Service;
type Factory = publish_subscribe::PortFactory<Svc, [u8], ()>;

/// One process's live iceoryx2 objects for one end (fields drop in declaration order:
/// ports before their services, services before the node).
#[derive(Debug)]
struct Ports {
    publisher: Publisher<Svc, [u8], ()>,
    subscriber: Subscriber<Svc, [u8], ()>,
    tx: Factory,
    _rx: Factory,
    _node: Node<Svc>,
    /// The peer's subscriber has been seen and the publisher connected to it.
    connected: bool,
}

/// One end: the names of the service it publishes on and the one it subscribes to, and
/// (after its first use in its process) the ports.
#[derive(Debug)]
pub struct IceoryxEnd {
    tx_name: String,
    rx_name: String,
    ports: Option<Ports>,
    buf: Vec<u8>,
}

/// iceoryx2 publish-subscribe, one service per direction.
#[derive(Debug)]
pub struct Iceoryx2;

/// A pair of service names unique to this process and call.
fn names() -> (String, String) {
    // Relaxed: a per-process counter; uniqueness needs only atomicity.
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base = format!("mproc-bench/{}/{n}", std::process::id());
    (format!("{base}/a-to-b"), format!("{base}/b-to-a"))
}

/// Opens (or creates: the two processes race to it) the service `name` for `size`-byte
/// slices. Both sides ask for the same settings, so either may create it.
fn service(
    node: &Node<Svc>,
    name: &str,
    size: usize,
    deadline: &Deadline,
) -> Result<Factory, BenchError> {
    let name: ServiceName = name
        .try_into()
        .map_err(|e| crate::error::api(format!("{e:?}")))?;
    let depth = slots_for(size) as usize;
    let mut spin = Spin::new(deadline, "an iceoryx2 service to settle");
    loop {
        let r = node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(depth)
            .subscriber_max_borrowed_samples(1)
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(1)
            .max_nodes(2)
            .open_or_create();
        match r {
            Ok(f) => return Ok(f),
            // The other process is half-way through creating or removing it: retry.
            Err(PublishSubscribeOpenOrCreateError::SystemInFlux) => spin.turn()?,
            Err(e) => return Err(crate::error::api(format!("{e:?}"))),
        }
    }
}

/// Creates this process's node, services and ports for `tx`/`rx`.
fn open(tx: &str, rx: &str, size: usize, deadline: &Deadline) -> Result<Ports, BenchError> {
    let api = |e: &dyn std::fmt::Debug| crate::error::api(format!("{e:?}"));
    let node = NodeBuilder::new()
        // The benches own their signals (the `alarm` watchdog, SIGKILL on timeout).
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(|e| api(&e))?;
    let tx_service = service(&node, tx, size, deadline)?;
    let rx_service = service(&node, rx, size, deadline)?;
    let until: Instant = deadline.instant();
    let publisher = tx_service
        .publisher_builder()
        .initial_max_slice_len(size)
        .max_loaned_samples(1)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .set_backpressure_handler(move |_: &BackpressureInfo| {
            if Instant::now() < until {
                BackpressureAction::Retry
            } else {
                BackpressureAction::DiscardDataAndFail
            }
        })
        .create()
        .map_err(|e| api(&e))?;
    let subscriber = rx_service
        .subscriber_builder()
        .buffer_size(slots_for(size) as usize)
        .create()
        .map_err(|e| api(&e))?;
    Ok(Ports {
        publisher,
        subscriber,
        tx: tx_service,
        _rx: rx_service,
        _node: node,
        connected: false,
    })
}

impl IceoryxEnd {
    /// This process's ports, created on first use.
    fn ports(&mut self, deadline: &Deadline) -> Result<&mut Ports, BenchError> {
        if self.ports.is_none() {
            let size = self.buf.len();
            self.ports = Some(open(&self.tx_name, &self.rx_name, size, deadline)?);
        }
        Ok(self.ports.as_mut().expect("just created"))
    }
}

impl Transport for Iceoryx2 {
    const NAME: &'static str = "iceoryx2";
    const BLOCKING: bool = false;
    type End = IceoryxEnd;

    fn pair(size: usize) -> Result<(IceoryxEnd, IceoryxEnd), BenchError> {
        // Warnings only matter when they become errors, which the benches report anyway.
        set_log_level_from_env_or(LogLevel::Error);
        let (ab, ba) = names();
        Ok(crossed(halves(ab), halves(ba), |_, tx_name, rx_name| {
            IceoryxEnd {
                tx_name,
                rx_name,
                ports: None,
                buf: message_buf(size),
            }
        }))
    }

    fn send(e: &mut IceoryxEnd, seq: u64, deadline: &Deadline) -> Result<(), BenchError> {
        let size = e.buf.len();
        put_seq(&mut e.buf, seq);
        let p = e.ports(deadline)?;
        if !p.connected {
            let mut spin = Spin::new(deadline, "the iceoryx2 peer's subscriber");
            while p.tx.dynamic_config().number_of_subscribers() == 0 {
                spin.turn()?;
            }
            p.publisher
                .update_connections()
                .map_err(|e| crate::error::api(format!("{e:?}")))?;
            p.connected = true;
        }
        let sample = p
            .publisher
            .loan_slice_uninit(size)
            .map_err(|e| crate::error::api(format!("{e:?}")))?;
        let sample = sample.write_from_slice(&e.buf);
        match sample.send() {
            Ok(1) => Ok(()),
            Ok(n) => Err(BenchError::Peer(format!(
                "iceoryx2 sample delivered to {n} subscribers, not 1"
            ))),
            Err(err) => Err(crate::error::api(format!("{err:?}"))),
        }
    }

    fn recv(e: &mut IceoryxEnd, deadline: &Deadline) -> Result<u64, BenchError> {
        let Some(p) = e.ports.as_mut() else {
            // First use in this process: create the ports, then fall through.
            e.ports(deadline)?;
            return Self::recv(e, deadline);
        };
        let mut spin = Spin::new(deadline, "an iceoryx2 sample");
        loop {
            match p.subscriber.receive() {
                Ok(Some(sample)) => {
                    let payload = sample.payload();
                    if payload.len() != e.buf.len() {
                        return Err(BenchError::Corrupt(format!(
                            "{} bytes, expected {}",
                            payload.len(),
                            e.buf.len()
                        )));
                    }
                    e.buf.copy_from_slice(payload);
                    return get_seq(&e.buf);
                }
                Ok(None) => spin.turn()?,
                Err(err) => return Err(crate::error::api(format!("{err:?}"))),
            }
        }
    }
}
