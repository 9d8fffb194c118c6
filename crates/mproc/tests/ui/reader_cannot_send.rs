// A one-way pipe's reader has no `send` (Python: OSError('connection is read-only')): the
// error names the reader's missing side, `ReadOnly`.
//
// expect: error[E0599]: the method `send` exists for struct `Connection<
// expect: ReadOnly, u32>`

fn main() {
    let (mut r, _w) = mproc::pipe_oneway::<u32>().unwrap();
    r.send(&1u32).unwrap();
}
