//! `Pipe` / `Connection` across real processes (fork, and spawn from a multithreaded parent):
//! bytes and objects, poll, duplex, one-way, messages larger than the ring, exact EOF (peer
//! closed, dropped, SIGKILLed; never before its data is drained), `BufferTooShort`,
//! `BrokenPipe`, and crashes mid-stream. Every wait is bounded.

mod common;

use common::{LONG, exit_code, kill_and_reap};

use std::time::{Duration, Instant};

use mproc::MessageError;
use mproc::pipe::{PipeOptions, RecvBytesError, RecvError, RecvTimeoutError, SendError};
use mproc::{Connection, Message, PipeReader, PipeWriter, Process, StartMethod, pipe, pipe_oneway};

/// A one-way pipe whose ring holds `capacity` bytes (small rings make big messages stream
/// through in fragments).
fn oneway_with_ring<T: Message + 'static>(capacity: u32) -> (PipeReader<T>, PipeWriter<T>) {
    PipeOptions::new().capacity(capacity).oneway::<T>().unwrap()
}

fn fork<A: mproc::Args>(f: impl FnOnce(A) + Send + 'static, args: A) -> Process {
    let mut p = Process::new(f, args).start_method(StartMethod::Fork);
    p.start().expect("start");
    p
}

/// A recognisable payload of `n` bytes.
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

type Record = (u32, String, Vec<Option<i64>>);

#[test]
fn bytes_and_objects_in_one_process() {
    let (mut a, mut b) = pipe::<Record, Record>().unwrap();
    a.send_bytes(b"").unwrap();
    a.send_bytes(b"abc").unwrap();
    a.send(&(7u32, String::from("seven"), vec![Some(1i64), None]))
        .unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), b"abc");
    assert_eq!(
        b.recv().unwrap(),
        (7, "seven".to_string(), vec![Some(1), None])
    );
    // Raw bytes are not a typed message: a decode error, message consumed.
    a.send_bytes(&[0xff; 3]).unwrap();
    assert!(matches!(b.recv(), Err(RecvError::Decode(_))));
    a.send(&(5, String::new(), vec![])).unwrap();
    assert_eq!(b.recv().unwrap().0, 5);
}

#[test]
fn bytes_that_were_not_sent_as_the_type_are_an_error_never_a_value() {
    // Any 8 bytes would be a valid archive of a u64: only the type check tells them apart.
    let (mut a, mut b) = pipe::<u64, u64>().unwrap();
    for raw in [&b"12345678"[..], &7u64.to_le_bytes(), &[0u8; 16], b""] {
        a.send_bytes(raw).unwrap();
        match b.recv() {
            Err(RecvError::Decode(MessageError::Invalid(why))) => {
                assert!(why.contains("u64") || why.contains("too short"), "{why}")
            }
            other => panic!("{raw:?} received as {other:?}"),
        }
    }
    // A typed message's bytes are its archive and type check; sent back raw, they decode.
    a.send(&42).unwrap();
    let bytes = b.recv_bytes().unwrap();
    b.send_bytes(&bytes).unwrap();
    assert_eq!(a.recv(), Ok(42));
    // A peer of another type (`Connection<u32, u32>` bytes) is refused as well.
    let (mut c, mut d) = pipe::<u32, u32>().unwrap();
    c.send(&42).unwrap();
    a.send_bytes(&d.recv_bytes().unwrap()).unwrap();
    assert!(matches!(b.recv(), Err(RecvError::Decode(_))));
    assert_eq!(
        b.dropped_messages(),
        0,
        "decode errors are not transport drops"
    );
}

#[test]
fn bytes_and_objects_across_fork() {
    let (a, mut b) = pipe::<Vec<u64>, Vec<u64>>().unwrap();
    let p = fork(
        |(mut a,): (Connection<Vec<u64>>,)| {
            a.send_bytes(b"raw").unwrap();
            a.send(&vec![]).unwrap();
            a.send(&vec![1u64, 2, 3]).unwrap();
        },
        (a,),
    );
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    assert_eq!(b.recv().unwrap(), Vec::<u64>::new());
    assert_eq!(b.recv().unwrap(), vec![1, 2, 3]);
    assert_eq!(b.recv(), Err(RecvError::Disconnected));
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn poll_with_and_without_data() {
    let (mut a, mut b) = pipe::<u32, u32>().unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let t = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "poll returned early"
    );
    a.send(&1u32).unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert!(b.poll(None).unwrap(), "poll does not consume");
    assert_eq!(b.recv().unwrap(), 1);
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    // poll(None) blocks until a child sends.
    let p = fork(
        |(mut a,): (Connection<u32>,)| {
            std::thread::sleep(Duration::from_millis(50));
            a.send(&2u32).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        },
        (a,),
    );
    assert!(b.poll(None).unwrap());
    assert_eq!(b.recv().unwrap(), 2);
    // After the peer is gone, poll is true (EOF is readable) and recv says so.
    assert_eq!(exit_code(&p), 0);
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv(), Err(RecvError::Disconnected));
}

#[test]
fn recv_timeout_times_out_then_receives() {
    let (mut a, mut b) = pipe::<u32, u32>().unwrap();
    let t = Instant::now();
    assert_eq!(
        b.recv_timeout(Duration::from_millis(80)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(80));
    a.send(&9u32).unwrap();
    assert_eq!(b.recv_timeout(Duration::from_secs(5)), Ok(9));
}

#[test]
fn duplex_both_ways_across_fork() {
    let (mut a, b) = pipe::<u64, u64>().unwrap();
    // The child echoes every number doubled, until EOF.
    let p = fork(
        |(mut b,): (Connection<u64>,)| {
            while let Ok(n) = b.recv() {
                b.send(&(n * 2)).unwrap();
            }
        },
        (b,),
    );
    for i in 0..200u64 {
        a.send(&i).unwrap();
        assert_eq!(a.recv_timeout(LONG), Ok(i * 2));
    }
    // Both directions at once: pipeline 100 before reading.
    for i in 0..100u64 {
        a.send(&i).unwrap();
    }
    for i in 0..100u64 {
        assert_eq!(a.recv_timeout(LONG), Ok(i * 2));
    }
    a.close();
    assert_eq!(exit_code(&p), 0, "the child saw EOF and returned");
}

#[test]
fn oneway_across_fork_in_python_order() {
    // Python: r, w = Pipe(duplex=False). Sending on `r` or receiving on `w` does not
    // compile (see the compile_fail doc tests in `mproc::pipe`).
    let (mut r, w): (PipeReader<String>, PipeWriter<String>) = pipe_oneway().unwrap();
    let p = fork(
        |(mut w,): (PipeWriter<String>,)| {
            for i in 0..50u32 {
                w.send(&format!("line {i}")).unwrap();
            }
            w.close();
        },
        (w,),
    );
    for i in 0..50u32 {
        assert_eq!(r.recv().unwrap(), format!("line {i}"));
    }
    assert_eq!(r.recv(), Err(RecvError::Disconnected));
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn large_messages_stream_through_a_small_ring_intact() {
    let (r, mut w) = oneway_with_ring::<Vec<u64>>(64 << 10);
    let sizes = [1 << 20, 0, 65_536, 1, 3 * (1 << 20) + 17];
    let p = fork(
        move |(mut r,): (PipeReader<Vec<u64>>,)| {
            for (i, n) in sizes.into_iter().enumerate() {
                let got = r.recv_bytes().unwrap();
                assert!(
                    got == pattern(n, i as u32),
                    "message {i} of {n} bytes corrupted"
                );
            }
            // And a typed one larger than the ring.
            let v: Vec<u64> = r.recv().unwrap();
            assert_eq!(v, (0..100_000u64).collect::<Vec<_>>());
        },
        (r,),
    );
    for (i, n) in sizes.into_iter().enumerate() {
        w.send_bytes(&pattern(n, i as u32)).unwrap();
    }
    w.send(&(0..100_000u64).collect::<Vec<_>>()).unwrap();
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn eof_after_peer_closes_but_not_before_its_data_is_drained() {
    for how in ["close", "drop", "return"] {
        let (a, mut b) = pipe::<u32, u32>().unwrap();
        let p = fork(
            move |(mut a,): (Connection<u32>,)| {
                for i in 0..20u32 {
                    a.send(&i).unwrap();
                }
                match how {
                    "close" => a.close(),
                    "drop" => drop(a),
                    _ => {}
                }
                // Linger after closing: EOF must not wait for the process to exit, except
                // when the end is only released by returning.
                if how != "return" {
                    std::thread::sleep(Duration::from_secs(3));
                }
            },
            (a,),
        );
        // Let the child finish sending and close before we read anything.
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..20u32 {
            assert_eq!(b.recv().unwrap(), i, "{how}: data lost");
        }
        let t = Instant::now();
        assert_eq!(
            b.recv_timeout(LONG),
            Err(RecvTimeoutError::Disconnected),
            "{how}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{how}: EOF waited for the child's exit"
        );
        let _ = p.kill();
        exit_code(&p);
    }
}

#[test]
fn eof_when_peer_is_sigkilled_while_we_wait() {
    let (a, mut b) = pipe::<u32, u32>().unwrap();
    let p = fork(
        |(mut a,): (Connection<u32>,)| {
            a.send(&1u32).unwrap();
            std::thread::sleep(Duration::from_secs(30));
            drop(a);
        },
        (a,),
    );
    assert_eq!(b.recv_timeout(LONG), Ok(1));
    let killer = std::thread::spawn({
        let pid = p.pid().unwrap() as i32;
        move || {
            std::thread::sleep(Duration::from_millis(100));
            sigkill(pid);
        }
    });
    let t = Instant::now();
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
    assert!(t.elapsed() < Duration::from_secs(5));
    killer.join().unwrap();
    assert_eq!(exit_code(&p), -9);
}

#[test]
fn poll_sees_eof_once_the_peer_is_sigkilled() {
    // `poll()` never sleeps, so it must ask the kernel itself whether the writer lives.
    let (a, mut b) = pipe::<u32, u32>().unwrap();
    let p = fork(
        |(a,): (Connection<u32>,)| {
            let _keep = a;
            std::thread::sleep(Duration::from_secs(30));
        },
        (a,),
    );
    sigkill(p.pid().unwrap() as i32);
    assert_eq!(exit_code(&p), -9);
    // Python: `poll()` is true at EOF (the next `recv` raises EOFError).
    assert_eq!(
        b.poll(Some(Duration::ZERO)),
        Ok(true),
        "poll() after the only writer was SIGKILLed"
    );
    assert_eq!(b.recv(), Err(RecvError::Disconnected));
}

fn sigkill(pid: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

#[test]
fn disowned_fork_copies_do_not_keep_the_pipe_open() {
    // Python's P6: a child that merely inherits the write end keeps EOF from ever arriving.
    let (a, mut b) = pipe::<String, String>().unwrap();
    // This child inherits both ends by fork but is passed neither: it must not count.
    let bystander = fork(|()| std::thread::sleep(Duration::from_secs(30)), ());
    let sender = fork(
        |(mut a,): (Connection<String>,)| {
            a.send(&String::from("only")).unwrap();
        },
        (a,),
    );
    assert_eq!(b.recv_timeout(LONG).as_deref(), Ok("only"));
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
    assert_eq!(exit_code(&sender), 0);
    kill_and_reap(&bystander);
}

#[test]
fn send_to_a_closed_peer_is_broken_pipe() {
    let (mut a, b) = pipe::<u8, u8>().unwrap();
    drop(b);
    assert_eq!(a.send(&1u8), Err(SendError::Disconnected));
    assert_eq!(a.send_bytes(b"x"), Err(SendError::Disconnected));

    // A peer in a child that is killed: at the latest once the ring is full.
    let (mut w_side, r_side) = PipeOptions::new()
        .capacity(4096)
        .duplex::<u8, u8>()
        .unwrap();
    let p = fork(
        |(_r,): (Connection<u8>,)| std::thread::sleep(Duration::from_secs(30)),
        (r_side,),
    );
    kill_and_reap(&p);
    let t = Instant::now();
    let mut result = Ok(());
    for _ in 0..10_000 {
        result = w_side.send_bytes(&[0u8; 100]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(SendError::Disconnected));
    assert!(t.elapsed() < LONG);
}

#[test]
fn recv_bytes_into_buffer_too_short_keeps_the_message() {
    let (mut a, mut b) = pipe::<Vec<u8>, Vec<u8>>().unwrap();
    a.send_bytes(b"hello world").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        b.recv_bytes_into(&mut small),
        Err(RecvBytesError::BufferTooShort { needed: 11 })
    );
    assert_eq!(small, [0; 4], "buffer untouched");
    let mut big = [0u8; 32];
    assert_eq!(b.recv_bytes_into(&mut big), Ok(11));
    assert_eq!(&big[..11], b"hello world");
    a.send_bytes(b"again").unwrap();
    let mut v = vec![1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(b.recv_bytes_into_vec(&mut v), Ok(5));
    assert_eq!(v, b"again");
    // recv_bytes(maxlength): a longer message stays queued; retry with a larger limit.
    a.send_bytes(&[7u8; 30_000]).unwrap();
    assert_eq!(
        b.recv_bytes_max(10),
        Err(RecvBytesError::MessageTooLong {
            len: 30_000,
            max: 10
        })
    );
    assert_eq!(
        b.recv_bytes_into(&mut big),
        Err(RecvBytesError::BufferTooShort { needed: 30_000 })
    );
    assert_eq!(b.recv_bytes_max(30_000).map(|v| v.len()), Ok(30_000));
    drop(a);
    assert_eq!(
        b.recv_bytes_into(&mut big),
        Err(RecvBytesError::Disconnected)
    );
}

#[test]
fn writer_killed_mid_stream_loses_nothing_it_committed() {
    // The child streams numbered 256 KiB messages through a 16 KiB ring until killed; the
    // parent reads slowly so the child is always mid-message. Survivor: every whole message
    // intact and in order, then EOF (never a partial message, never a hang).
    let (mut r, w) = oneway_with_ring::<Vec<u8>>(16 << 10);
    let p = fork(
        |(mut w,): (PipeWriter<Vec<u8>>,)| {
            for i in 0u32.. {
                let mut m = i.to_le_bytes().to_vec();
                m.extend_from_slice(&pattern(256 << 10, i));
                if w.send_bytes(&m).is_err() {
                    break;
                }
            }
        },
        (w,),
    );
    let mut next = 0u32;
    for _ in 0..3 {
        let m = r.recv_bytes().unwrap();
        assert_eq!(m[..4], next.to_le_bytes());
        assert!(m[4..] == pattern(256 << 10, next));
        next += 1;
    }
    // Pull part of the next message into the receiver, then kill the writer mid-stream.
    let _ = r.poll(Some(Duration::from_millis(5)));
    kill_and_reap(&p);
    loop {
        match r.recv_bytes_timeout(LONG) {
            Ok(m) => {
                assert_eq!(
                    m[..4],
                    next.to_le_bytes(),
                    "a message was lost or duplicated"
                );
                assert!(
                    m[4..] == pattern(256 << 10, next),
                    "message {next} corrupted"
                );
                next += 1;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        r.dropped_messages() <= 1,
        "at most the one in-flight message is dropped"
    );
}

#[test]
fn reader_killed_leaves_writer_with_broken_pipe_and_others_unaffected() {
    // Kill a reading child mid-stream; the writer is told, a second pipe keeps working.
    let (r, mut w) = oneway_with_ring::<Vec<u8>>(8 << 10);
    let (mut r2, mut w2) = pipe_oneway::<u8>().unwrap();
    let p = fork(
        |(mut r,): (PipeReader<Vec<u8>>,)| {
            while r.recv_bytes().is_ok() {
                std::thread::sleep(Duration::from_millis(1));
            }
        },
        (r,),
    );
    w.send_bytes(&pattern(100_000, 1)).unwrap();
    kill_and_reap(&p);
    let t = Instant::now();
    let mut res = Ok(());
    while res.is_ok() && t.elapsed() < LONG {
        res = w.send_bytes(&pattern(10_000, 2));
    }
    assert_eq!(res, Err(SendError::Disconnected));
    w2.send(&3u8).unwrap();
    assert_eq!(r2.recv(), Ok(3));
}

#[test]
fn handle_passed_through_two_generations_of_fork() {
    let (a, mut b) = pipe::<String, String>().unwrap();
    let p = fork(
        |(a,): (Connection<String>,)| {
            let gc = Process::new(
                |(mut a,): (Connection<String>,)| a.send(&String::from("from grandchild")).unwrap(),
                (a,),
            )
            .start_method(StartMethod::Fork);
            let mut gc = gc;
            gc.start().unwrap();
            assert_eq!(
                gc.join_timeout(LONG).unwrap().map(|s| s.exitcode()),
                Some(0)
            );
        },
        (a,),
    );
    assert_eq!(b.recv_timeout(LONG).as_deref(), Ok("from grandchild"));
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn used_end_can_be_passed_and_the_child_takes_over_its_ring_roles() {
    // The parent sends and receives on `a` first (claiming both ring roles), then passes it.
    let (mut a, mut b) = pipe::<u32, u32>().unwrap();
    a.send(&1u32).unwrap();
    b.send(&10u32).unwrap();
    assert_eq!(a.recv(), Ok(10));
    let p = fork(
        |(mut a,): (Connection<u32>,)| {
            a.send(&2u32).unwrap();
            assert_eq!(a.recv(), Ok(20));
        },
        (a,),
    );
    assert_eq!(b.recv_timeout(LONG), Ok(1));
    assert_eq!(b.recv_timeout(LONG), Ok(2));
    b.send(&20u32).unwrap();
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
    assert_eq!(exit_code(&p), 0);
}

// ---- spawn ----------------------------------------------------------------------------------

fn spawned_echo((mut conn, mut log): (Connection<String>, PipeWriter<String>)) {
    while let Ok(s) = conn.recv() {
        conn.send(&s.to_uppercase()).unwrap();
    }
    log.send(&String::from("echo saw EOF")).unwrap();
}
mproc::entry!(spawned_echo);

#[test]
fn handles_passed_to_a_spawned_child_of_a_multithreaded_parent() {
    // Another thread is running while we start the child: spawn is the safe method then.
    let busy = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(300)));
    let (mut a, b) = pipe::<String, String>().unwrap();
    let (mut log_r, log_w) = pipe_oneway::<String>().unwrap();
    let mut p = Process::new(spawned_echo, (b, log_w)).start_method(StartMethod::Spawn);
    p.start().expect("spawn");
    for word in ["alpha", "beta", "gamma"] {
        a.send(&word.to_string()).unwrap();
        assert_eq!(a.recv_timeout(LONG), Ok(word.to_uppercase()));
    }
    // A large message through the spawned child too.
    let big = "x".repeat(300_000);
    a.send(&big).unwrap();
    assert_eq!(a.recv_timeout(LONG).map(|s| s.len()), Ok(300_000));
    a.close();
    assert_eq!(log_r.recv_timeout(LONG).as_deref(), Ok("echo saw EOF"));
    assert_eq!(
        log_r.recv_timeout(LONG),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(exit_code(&p), 0);
    busy.join().unwrap();
}

fn spawned_reader((mut r, mut report): (PipeReader<Vec<u8>>, PipeWriter<bool>)) {
    let m = r.recv_bytes().unwrap();
    report.send(&(m == pattern(1 << 20, 77))).unwrap();
}
mproc::entry!(spawned_reader);

#[test]
fn reader_passed_mid_message_hands_its_partial_message_to_the_child() {
    let (mut r, mut w) = oneway_with_ring::<Vec<u8>>(16 << 10);
    let (mut report_r, report_w) = pipe_oneway::<bool>().unwrap();
    let writer = std::thread::spawn(move || w.send_bytes(&pattern(1 << 20, 77)));
    std::thread::sleep(Duration::from_millis(50));
    // Pulls the fragments published so far into this end's private buffer: not whole yet.
    assert!(!r.poll(Some(Duration::ZERO)).unwrap());
    let mut p = Process::new(spawned_reader, (r, report_w)).start_method(StartMethod::Spawn);
    p.start().expect("spawn");
    assert_eq!(
        report_r.recv_timeout(LONG),
        Ok(true),
        "child got the message intact"
    );
    assert_eq!(writer.join().unwrap(), Ok(()));
    assert_eq!(exit_code(&p), 0);
}

#[test]
fn a_captured_end_is_disowned_in_the_child() {
    // Captured by the closure instead of passed as an argument: the fork child has a copy it
    // does not hold; using it panics (exit code 1) rather than stealing the parent's roles.
    let (a, mut b) = pipe::<u8, u8>().unwrap();
    let p = fork(
        move |()| {
            let mut a = a;
            let _ = a.send(&1u8);
        },
        (),
    );
    assert_eq!(exit_code(&p), 1);
    // The parent's copy went away with the closure after start: EOF, nothing was sent.
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn ends_are_send() {
    fn is_send<T: Send>() {}
    is_send::<Connection<String, u64>>();
    is_send::<PipeReader<String>>();
    is_send::<PipeWriter<String>>();
    let (mut a, b) = pipe::<u32, u32>().unwrap();
    let t = std::thread::spawn(move || {
        let mut b = b;
        b.recv()
    });
    a.send(&4u32).unwrap();
    assert_eq!(t.join().unwrap(), Ok(4));
}

#[test]
fn a_too_long_message_is_not_pulled_into_memory_and_stays_queued() {
    // 4 MiB through a 4 KiB ring from a child: recv_bytes_max(16) reads only the first
    // fragment (the writer stays blocked on the full ring), then a larger limit gets it all.
    let (mut r, w) = oneway_with_ring::<u8>(4096);
    let p = fork(
        |(mut w,): (PipeWriter<u8>,)| {
            w.send_bytes(&pattern(4 << 20, 5)).unwrap();
            w.send(&1u8).unwrap();
        },
        (w,),
    );
    assert_eq!(
        r.recv_bytes_max(16),
        Err(RecvBytesError::MessageTooLong {
            len: 4 << 20,
            max: 16
        })
    );
    let m = r.recv_bytes_max(4 << 20).unwrap();
    assert!(m == pattern(4 << 20, 5));
    assert_eq!(r.recv(), Ok(1));
    assert_eq!(r.recv(), Err(RecvError::Disconnected));
    assert_eq!(exit_code(&p), 0);
}
