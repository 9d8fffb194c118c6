// A `Value` of an owning type: not `Shareable`, with what to use instead.
//
// expect: error[E0277]: `String` cannot live in shared memory: it is not `Shareable`
// expect: send it through a `Queue` or a `Connection` instead

fn main() {
    let _v = mproc::Value::new(String::from("no pointers in shared memory"));
}
