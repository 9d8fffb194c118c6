//! Python's `Barrier` across processes: three workers (the parent and two forked children)
//! do three rounds of work in lock step; the last to arrive each round runs the action,
//! before anybody starts the next round.
//!
//! Run with `cargo run -p mproc --example barrier`.

use std::time::Duration;

use mproc::Process;
use mproc::sync::Barrier;

fn work(name: &str, barrier: &Barrier) {
    for round in 0..3 {
        // ... this round's share of the work ...
        // Wait for the other parties; a bounded wait, so a stuck party cannot hang us.
        let index = barrier
            .wait_timeout(Duration::from_secs(10))
            .expect("barrier broken");
        println!("{name}: round {round} done, arrived as {index}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The action runs in whichever party arrives last, before the others are released.
    let barrier = Barrier::with_action(3, || println!("-- all three arrived --"))?;
    let children: Vec<Process> = ["child-1", "child-2"]
        .into_iter()
        .map(|name| {
            // Pass a handle (a clone) to each child, as Python's Process(args=(barrier,)).
            let mut p = Process::new(move |(b,): (Barrier,)| work(name, &b), (barrier.clone(),));
            p.start().map(|()| p)
        })
        .collect::<Result<_, _>>()?;
    work("parent", &barrier);
    for p in &children {
        let status = p
            .join_timeout(Duration::from_secs(10))?
            .ok_or("child hung")?;
        assert!(status.success());
    }
    Ok(())
}
