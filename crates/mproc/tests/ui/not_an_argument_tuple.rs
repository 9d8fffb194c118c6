// A bare value instead of a one-element tuple as a process's arguments.
//
// expect: error[E0277]: `u32` is not a process's argument tuple
// expect: note the comma

fn main() {
    let _p = mproc::Process::new(|_x: u32| {}, 5u32);
}
