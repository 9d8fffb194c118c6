// `&Queue` shared across threads: a handle is `Send`, not `Sync`; each thread needs its own
// clone. The error says so and names the queue type.
//
// expect: error[E0277]
// expect: cannot be shared between threads safely
// expect: Queue<u32>

fn main() {
    let q: mproc::Queue<u32> = mproc::Queue::new().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| q.put(1));
    });
}
