//! A short tour of `mproc::Process`: both start methods, exit codes, a panic, a kill.
//!
//! Run with `cargo run -p mproc --example process_tour`.

use std::time::Duration;

use mproc::{Process, StartMethod};

/// A spawn entry point: runs in a re-executed copy of this binary.
fn greet((who, times): (String, u32)) {
    for _ in 0..times {
        println!("[{}] hello, {who}", mproc::current_process().name);
    }
}
mproc::entry!(greet);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit = Duration::from_secs(10);

    // Spawn: safe even with other threads running in this parent.
    let mut p =
        Process::new(greet, ("spawned world".to_string(), 2)).start_method(StartMethod::Spawn);
    p.start()?;
    println!(
        "spawned {}: {}",
        p.get_name(),
        p.join_timeout(limit)?.expect("ended")
    );

    // Fork: a closure, with its arguments passed explicitly.
    let mut p = Process::new(|(code,): (i32,)| std::process::exit(code), (3,))
        .start_method(StartMethod::Fork);
    p.start()?;
    println!(
        "forked {}: {}",
        p.get_name(),
        p.join_timeout(limit)?.expect("ended")
    );

    // A panic in the child: exit code 1, message on the child's stderr.
    let mut p = Process::new(|()| panic!("on purpose"), ()).name("Panicky");
    p.start()?;
    println!(
        "{}: {}",
        p.get_name(),
        p.join_timeout(limit)?.expect("ended")
    );

    // A child that would run for a minute: join with a timeout, then kill it.
    let mut p = Process::new(|()| std::thread::sleep(Duration::from_secs(60)), ());
    p.start()?;
    assert!(p.join_timeout(Duration::from_millis(100))?.is_none());
    p.kill()?;
    println!(
        "{}: {} (Python prints exitcode=-SIGKILL too)",
        p.get_name(),
        p.join()?
    );
    Ok(())
}
