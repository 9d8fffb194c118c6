//! The seed's Queue program, faithfully: a producer puts 0 to 4 and prints each, a consumer
//! prints what it gets and stops at a `None` sentinel — which the producer never sends.
//!
//! In Python this program hangs for ever: the consumer waits for `None` in `queue.get()`.
//! In mproc the consumer finishes anyway: the producer's process exits, the parent moved (not
//! cloned) its last handle into the consumer, so the consumer's `get` on the empty queue is
//! told `Disconnected` — no other handle can ever put.
//!
//! Run it with `cargo run -p mproc --example producer_consumer`.

use std::error::Error;

use mproc::queue::GetError;
use mproc::{Process, Queue};

/// Python: `def producer(queue)`.
fn producer((queue,): (Queue<Option<u32>>,)) {
    for i in 0..5 {
        queue.put(Some(i)).expect("the consumer holds the queue");
        println!("producer put {i}");
    }
    // No `queue.put(None)`: the seed's producer never sends the sentinel.
}

/// Python: `def consumer(queue)`.
fn consumer((queue,): (Queue<Option<u32>>,)) {
    loop {
        match queue.get() {
            Ok(Some(data)) => println!("consumer got {data}"),
            Ok(None) => break, // the sentinel (never sent here)
            Err(GetError::Disconnected) => {
                println!("consumer stopped: no producer left");
                break;
            }
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

/// The body of `if __name__ == '__main__':`.
pub fn run() -> Result<(), Box<dyn Error>> {
    let queue: Queue<Option<u32>> = Queue::new()?;
    let mut p1 = Process::new(producer, (queue.clone(),));
    let mut p2 = Process::new(consumer, (queue,));
    p1.start()?;
    p2.start()?;
    p1.join()?;
    p2.join()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    run()
}
