// A type that is not a `Message` in a `Queue<T>`: `Message`'s own message and notes (what to
// derive), not the first rkyv bound the type misses.
//
// expect: error[E0277]: `NotAMessage` cannot travel between processes: it is not an mproc `Message`
// expect: not a `Message`
// expect: derive `rkyv::Archive, rkyv::Serialize, rkyv::Deserialize` for `NotAMessage`
// expect: `mproc::rkyv` is the rkyv version mproc uses

struct NotAMessage;

fn main() {
    let _q: mproc::Queue<NotAMessage> = mproc::Queue::new().unwrap();
}
