// A process argument that is neither plain data nor an mproc handle: reported as not
// `Passable`, with what can be passed.
//
// expect: error[E0277]: `NotPassable` cannot be passed to a child process: it is not `Passable`
// expect: a child's arguments are plain data

struct NotPassable;

fn main() {
    let _p = mproc::Process::new(|(_x,): (NotPassable,)| {}, (NotPassable,));
}
