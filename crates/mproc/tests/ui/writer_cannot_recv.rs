// A one-way pipe's writer has no `recv` (Python: OSError('connection is write-only')): the
// error names the writer's missing side, `WriteOnly`.
//
// expect: error[E0599]: the method `recv` exists for struct `Connection<u32,
// expect: WriteOnly>`

fn main() {
    let (_r, mut w) = mproc::pipe_oneway::<u32>().unwrap();
    let _ = w.recv();
}
