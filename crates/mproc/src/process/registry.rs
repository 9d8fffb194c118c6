//! Spawn entry points: functions registered by a stable name with [`entry!`](crate::entry).
//!
//! The registry is a link-time distributed slice (`linkme`): every `entry!` adds one static
//! [`EntryPoint`] to a linker section, so the list is complete before any code runs, in
//! particular before the pre-main hook that looks a name up in a spawned child. Names are
//! `module_path!()::function`, the same in parent and child because both run one binary; a
//! child whose `/proc/self/exe` was replaced by another build fails its hand-shake with
//! [`StartStage::UnknownEntry`](super::StartStage::UnknownEntry) instead of jumping to a
//! stale address.

use std::any::TypeId;

use super::boot::SpawnedChild;

/// One registered entry point. Built only by [`entry!`](crate::entry).
#[doc(hidden)]
#[derive(Debug)]
pub struct EntryPoint {
    /// `module_path!()::function`.
    pub name: &'static str,
    /// `TypeId` of the function item, how the parent recognises a registered target.
    pub target: fn() -> TypeId,
    /// Child side: imports the arguments, completes the hand-shake, runs the function, exits.
    pub run: fn(SpawnedChild) -> !,
}

/// Every registered entry point of this binary.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static ENTRIES: [EntryPoint];

/// The entry point whose function item has type id `target`, if registered.
pub(crate) fn by_type(target: TypeId) -> Option<&'static EntryPoint> {
    ENTRIES.iter().find(|e| (e.target)() == target)
}

/// The entry points registered under `name` (more than one is an error).
pub(crate) fn by_name(name: &str) -> impl Iterator<Item = &'static EntryPoint> + '_ {
    ENTRIES.iter().filter(move |e| e.name == name)
}

/// `TypeId` of a value's type (used by [`entry!`](crate::entry) on a function item).
#[doc(hidden)]
pub fn type_id_of_val<T: 'static>(_: &T) -> TypeId {
    TypeId::of::<T>()
}

/// Registers a function as a spawn entry point, under the name `module_path!()::name`.
///
/// The function takes one argument, the process's [`Args`](crate::Args) tuple, and returns
/// `()`: `fn worker(args: (u32, String))`. After `mproc::entry!(worker)`,
/// `Process::new(worker, args)` can be started with [`StartMethod::Spawn`](crate::StartMethod)
/// (and, like any closure, with `Fork`). Invoke it once per function, at module level, next to
/// the function. Functions must not be generic.
///
/// There is nothing to call from `main`: a spawned child is recognised before `main` runs (an
/// `.init_array` hook looks for the `MPROC_SPAWN` variable), runs its entry point and exits,
/// so it never reaches `main` or, under `cargo test`/nextest, the test harness.
///
/// ```
/// fn worker((n, label): (u32, String)) {
///     assert_eq!(label.len() as u32, n);
/// }
/// mproc::entry!(worker);
/// ```
#[macro_export]
macro_rules! entry {
    ($function:ident) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::ENTRIES)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::__private::EntryPoint = $crate::__private::EntryPoint {
                name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!($function)),
                target: || $crate::__private::type_id_of_val(&$function),
                run: |child| $crate::__private::run_entry($function, child),
            };
        };
    };
}
