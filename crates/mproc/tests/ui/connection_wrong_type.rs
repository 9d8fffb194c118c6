// Sending another type than the end's on a typed `Connection`.
//
// expect: error[E0308]: mismatched types
// expect: expected `&u32`, found `&String`

fn main() {
    let (mut a, _b) = mproc::pipe::<u32, u32>().unwrap();
    a.send(&String::from("not a u32")).unwrap();
}
