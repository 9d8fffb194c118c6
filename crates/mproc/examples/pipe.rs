//! The seed's Pipe program, faithfully — and it ends.
//!
//! ```python
//! def sender(conn):
//!     for message in ['Hello', 'World', 'Bye']:
//!         conn.send(message); print("Sent message:", message)
//!     conn.close()
//! def receiver(conn):
//!     while True:
//!         message = conn.recv()
//!         if message is None: break
//!         print("Received message:", message)
//! parent_conn, child_conn = Pipe()
//! p1 = Process(target=sender, args=(child_conn,)); p2 = Process(target=receiver, args=(parent_conn,))
//! p1.start(); p2.start(); p1.join(); p2.join()
//! ```
//!
//! The sender never sends `None`, so in Python the receiver waits for ever: a forked receiver
//! inherited its own copy of the sending end, which is never closed (pitfall P6). In mproc a
//! connection reaches a child only by being moved into its arguments, and each end counts
//! its live holders, so once the sender has closed its end (or exited) and the three messages
//! are read, the receiver's `recv` reports end of file and the program finishes.
//!
//! Run: `cargo run -p mproc --example pipe`.

use std::error::Error;
use std::time::Duration;

use mproc::pipe::RecvError;
use mproc::{Connection, Process};

/// What the pipe carries, both ways: Python strings, which may be `None`.
pub(crate) type Message = Option<String>;

/// What the two processes report, one line at a time (stdout in `main`; a test collects the
/// lines from both processes).
pub(crate) type Log = fn(&str);

/// Bound on each `join`, so a bug fails instead of hanging.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The seed's `sender`: sends 'Hello', 'World', 'Bye', printing each, then closes its end.
pub(crate) fn sender(mut conn: Connection<Message>, log: Log) {
    for message in ["Hello", "World", "Bye"] {
        conn.send(&Some(message.to_string())).expect("send");
        log(&format!("Sent message: {message}"));
    }
    conn.close();
}

/// The seed's `receiver`: prints messages until it gets `None` — which never comes. mproc
/// tells it that the sending end is gone instead (Python's `EOFError`, which the seed never
/// gets to see because its receiver hangs).
pub(crate) fn receiver(mut conn: Connection<Message>, log: Log) {
    loop {
        match conn.recv() {
            Ok(Some(message)) => log(&format!("Received message: {message}")),
            Ok(None) => break,
            Err(RecvError::Disconnected) => {
                log(
                    "Receiver: end of file, every sending end is closed (Python would wait for ever)",
                );
                break;
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// The seed's main block; returns the two exit codes (sender, receiver).
///
/// # Errors
///
/// Creating the pipe, starting or joining a process, or a process that did not finish within
/// [`JOIN_TIMEOUT`] (it is killed first).
pub(crate) fn run(log: Log) -> Result<(i32, i32), Box<dyn Error>> {
    let (parent_conn, child_conn) = mproc::pipe::<Message, Message>()?;
    // The connections are moved into the processes' arguments: each child holds exactly its
    // own end, and the parent holds none once both have started.
    let mut p1 = Process::new(move |(conn,)| sender(conn, log), (child_conn,));
    let mut p2 = Process::new(move |(conn,)| receiver(conn, log), (parent_conn,));
    p1.start()?;
    p2.start()?;
    let mut codes = [0; 2];
    for (i, p) in [&p1, &p2].into_iter().enumerate() {
        match p.join_timeout(JOIN_TIMEOUT)? {
            Some(status) => codes[i] = status.exitcode(),
            None => {
                let _ = p.kill();
                let _ = p.join_timeout(JOIN_TIMEOUT);
                return Err(
                    format!("{} did not finish within {JOIN_TIMEOUT:?}", p.get_name()).into(),
                );
            }
        }
    }
    Ok((codes[0], codes[1]))
}

fn print_line(line: &str) {
    println!("{line}");
}

fn main() -> Result<(), Box<dyn Error>> {
    let (sender, receiver) = run(print_line)?;
    println!("sender exit code {sender}, receiver exit code {receiver}");
    Ok(())
}
