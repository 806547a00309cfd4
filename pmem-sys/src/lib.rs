//! # pmem-sys: the kernel's persistent-memory API in user space
//!
//! ## The persistence model
//!
//! A store instruction does not write to memory: it writes to the CPU's
//! caches, and a line reaches the memory device only when the cache evicts
//! it or software asks for a *write-back*. On persistent memory that gap is
//! the difference between data that survives a power failure and data that
//! does not. What is guaranteed to survive is whatever has reached the
//! *persistence domain*:
//!
//! - With **ADR** (asynchronous DRAM refresh, every platform with
//!   persistent memory), the memory controller's write-pending queues are in
//!   the domain but the CPU caches are not. Software must write each line
//!   back (x86 `CLWB`, `CLFLUSHOPT` or `CLFLUSH`; Arm `DC CVAP`) and then
//!   wait for the write-backs with a fence (`SFENCE`; `DSB`). This is
//!   *cache-line granularity*.
//! - With **eADR**, the platform also flushes the caches on power loss, so
//!   an ordinary store is durable once it is globally visible: *byte
//!   granularity*. A fence is still needed after non-temporal stores, which
//!   wait in write-combining buffers outside the caches.
//! - **Non-temporal stores** (`MOVNT*`) bypass the caches altogether: no
//!   write-back is needed, only the fence. They are the fastest way to copy
//!   large amounts of data to persistent memory, and slower than a cached
//!   store plus write-back for tiny ones; the *non-temporal threshold*
//!   decides.
//! - An ordinary file on a non-DAX filesystem has the page cache between
//!   the stores and the media: only `msync` makes it durable. That is *page
//!   granularity*, and this library handles it too (see below).
//!
//! Intel once added `PCOMMIT` to push the memory controller's queues to the
//! media; ADR made it unnecessary, and it was withdrawn in 2016 before any
//! CPU shipped it. That is why the kernel's 2015 `wmb_pmem()` became a plain
//! `SFENCE` and why this library needs nothing else.
//!
//! ## The kernel API, mapped onto the model
//!
//! - `memcpy_to_pmem(dst, src, n)`: copy with a non-temporal body and
//!   written-back edges; when it returns the data has left the caches or is
//!   on its way. Not fenced.
//! - `wmb_pmem()`: the fence that makes every earlier `memcpy_to_pmem`,
//!   `clear_pmem`, `arch_wb_cache_pmem` (and `pmem_sys_memset`,
//!   `pmem_sys_memmove`) of the calling thread durable. On page-granular
//!   mappings it also `msync`s the ranges this thread dirtied, so the
//!   kernel's rule "copy, then `wmb_pmem`" is correct on any file.
//! - `arch_wb_cache_pmem(addr, n)`: write back lines written with ordinary
//!   stores (for example through a plain pointer).
//! - `memremap_pmem` / `memunmap_pmem`: map a file or device-DAX range; each
//!   mapping knows its granularity and why.
//!
//! ## Quickstart
//!
//! ```
//! use pmem_sys::{MapFlags, mapping};
//!
//! fn main() -> pmem_sys::Result<()> {
//!     // A file on a DAX filesystem (/mnt/pmem0/log) in real use; any file works.
//!     let dir = tempfile::tempdir().unwrap();
//!     let path = dir.path().join("log");
//!     let (addr, len) = mapping::map_file(&path, 1 << 20, MapFlags::CREATE, 0o644)?;
//!     let record = b"record";
//!     // SAFETY: [addr, addr + len) is a live mapping of this library and
//!     // len >= record.len(); the source is a separate buffer.
//!     unsafe { pmem_sys::memcpy_to_pmem(addr as *mut u8, record.as_ptr(), record.len()) };
//!     pmem_sys::drain()?; // the fence (or msync on an ordinary file): now durable
//!     println!("{}", mapping::granularity("quickstart", addr, len)?.name());
//!     mapping::unmap(addr)
//! }
//! ```
//!
//! [`api`] has the rest of the kernel API (`memcpy_from_pmem`,
//! `arch_wb_cache_pmem`, `persist`, ...); every raw-pointer call is `unsafe`
//! with its contract in a `# Safety` section.
//!
//! ## Layout
//!
//! - [`knobs`]: what the user forced, as plain data: parsing, the
//!   environment, the values in force.
//! - `arch`: how to copy and flush, and nothing else: the algorithm
//!   written once (`arch::algo`, generic over a vector and a flush
//!   instruction) and the static tables of leaves it stamps out per
//!   instruction set.
//! - [`engine`]: what the CPU has (`detect`), and which snapshot runs
//!   (`dispatch`: selection a pure function of the CPU and the knobs, the
//!   snapshot of everything a call needs, published through one atomic
//!   pointer).
//!
//! Dependencies run one way: `api` and `capi` use everything; `engine`
//! uses `arch`, `knobs` and `fault`; `mapping` uses `knobs`; `arch`,
//! `knobs` and `fault` use none of the others (`fault` uses `mapping`).
//! - [`mapping`]: `mmap` with `MAP_SYNC`, the registry of mappings, the
//!   granularity and its reason, and the page-granular `msync` bookkeeping.
//! - [`fault`]: the `SIGBUS` handler and guarded copy behind the fault-safe
//!   `memcpy_from_pmem`, `copy_mc` and `memcpy_to_pmem_checked`.
//! - [`api`]: the kernel API as Rust functions; this is what the Python
//!   extension uses.
//! - `capi` (feature `capi`): the only home of exported C symbols.
//!
//! ## Why a feature gate and not a second crate for the C ABI
//!
//! The C symbols (`#[unsafe(no_mangle)]`) live behind the `capi`
//! feature, and the crate is only an rlib: the Makefile builds `libpmem_sys.so` and `.a`
//! with `cargo rustc --features capi --crate-type cdylib|staticlib` and
//! passes the SONAME there. A crate that depends on this one (the Python
//! extension) therefore gets neither the exported symbols, which a cdylib
//! re-exports from its dependencies, nor the SONAME, which a
//! `cargo:rustc-cdylib-link-arg` in a build script would leak into every
//! dependent cdylib. One crate keeps the engine and its C face side by
//! side, and the generated header reads the C face from one file.

#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod api;
mod arch;
#[cfg(feature = "capi")]
pub mod capi;
pub mod engine;
mod error;
pub mod fault;
mod granularity;
pub mod knobs;
pub mod mapping;
#[cfg(feature = "record")]
pub mod oracle;
pub mod record;
pub mod trace;

pub use api::*;
pub use engine::{get_option, set_option};
pub use error::{Error, Result};
pub use mapping::{Granularity, MapFlags};

/// The library version, `MAJOR.MINOR.PATCH`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
