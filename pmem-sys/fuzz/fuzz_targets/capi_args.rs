//! The C entry points with random arguments, as a C caller reaches them:
//! knob names and values (`pmem_sys_set_option`, `pmem_sys_get_option`),
//! `pmem_sys_map_file` with random paths, flags, sizes and modes in a
//! scratch directory, `memremap_pmem` with random descriptors, offsets and
//! sizes, and `memunmap_pmem`, `pmem_sys_granularity`, `pmem_sys_is_pmem`,
//! `pmem_sys_mapping_size` and `pmem_sys_mapping_reason` of random
//! addresses, inside and outside live mappings.
//!
//! Every call must either succeed with a consistent answer or fail the libc
//! way: the failure value, errno set, and a message in
//! `pmem_sys_errormsg()` that starts with the call's name. Nothing may
//! crash.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pmem_sys::capi::*;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use pmem_sys::engine::knobs::NAMES as KNOBS;
const VALUES: [&str; 12] = [
    "1",
    "0",
    "",
    " 1 ",
    "4096",
    "-1",
    "18446744073709551616",
    "byte",
    "cache_line",
    "page",
    "/nonexistent",
    "/",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(Vec<u8>),
    Null,
}

#[derive(Arbitrary, Debug)]
enum Addr {
    Raw(usize),
    /// Inside (or just past) live mapping number `map`.
    Live {
        map: u8,
        off: u32,
    },
    Null,
}

#[derive(Arbitrary, Debug)]
enum Fd {
    /// The scratch file, read-write.
    File,
    /// The scratch file, read-only.
    ReadOnly,
    /// The scratch directory.
    Dir,
    Raw(i32),
}

#[derive(Arbitrary, Debug)]
enum Call {
    SetOption {
        name: Text,
        value: Text,
    },
    GetOption {
        name: Text,
    },
    MapFile {
        path: Text,
        size: u64,
        flags: u32,
        raw_flags: bool,
        mode: u16,
    },
    Memremap {
        fd: Fd,
        offset: u64,
        size: u64,
    },
    Unmap {
        addr: Addr,
    },
    Granularity {
        addr: Addr,
        n: usize,
    },
    IsPmem {
        addr: Addr,
        n: usize,
    },
    MappingSize {
        addr: Addr,
    },
    Reason {
        addr: Addr,
    },
}

/// The scratch directory of this process.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pmem-sys-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create the scratch directory");
        d
    })
}

/// A C string from fuzz bytes (cut at the first NUL), a known name or
/// value, or NULL.
fn c_text(t: &Text, known: &[&str]) -> Option<CString> {
    match t {
        Text::Known(i) => Some(CString::new(known[*i as usize % known.len()]).unwrap()),
        Text::Raw(b) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            Some(CString::new(&b[..end]).unwrap())
        }
        Text::Null => None,
    }
}

fn ptr(c: &Option<CString>) -> *const libc::c_char {
    c.as_ref().map_or(core::ptr::null(), |c| c.as_ptr())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn clear_errno() {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
}

/// Asserts the libc-style failure of `call`: errno set, message naming it.
fn failed(call: &str, want_errno: Option<i32>) {
    let e = errno();
    assert_ne!(e, 0, "{call} failed without errno");
    if let Some(w) = want_errno {
        assert_eq!(e, w, "{call}: errno");
    }
    // SAFETY: pmem_sys_errormsg never returns NULL; the string lives until
    // the next failing call of this thread.
    let msg = unsafe { CStr::from_ptr(pmem_sys_errormsg()) }.to_string_lossy();
    assert!(
        msg.starts_with(call),
        "{call} failed with a message that does not name it: {msg:?}"
    );
}

struct Live {
    addr: usize,
    len: usize,
}

fn resolve(a: &Addr, live: &[Live]) -> usize {
    match *a {
        Addr::Raw(x) => x,
        Addr::Live { map, off } if !live.is_empty() => {
            let m = &live[map as usize % live.len()];
            m.addr + off as usize % (m.len + 64)
        }
        Addr::Live { off, .. } => off as usize,
        Addr::Null => 0,
    }
}

fn inside(addr: usize, n: usize, live: &[Live]) -> bool {
    let end = addr.checked_add(n.max(1));
    live.iter()
        .any(|m| addr >= m.addr && end.is_some_and(|e| e <= m.addr + m.len))
}

/// A new mapping must describe itself consistently and take a durable write.
fn check_new_mapping(addr: *mut libc::c_void, len: usize) {
    assert_eq!(pmem_sys_mapping_size(addr), len);
    let g = pmem_sys_granularity(addr, len);
    assert!((0..=2).contains(&g), "granularity {g}");
    assert!(!pmem_sys_mapping_reason(addr).is_null());
    let data = [0x5au8; 300];
    let n = len.min(data.len());
    // SAFETY: the mapping is read-write for len >= n bytes.
    unsafe {
        memcpy_to_pmem(addr, data.as_ptr().cast(), n);
        assert_eq!(pmem_sys_persist(addr, n), 0, "persist of a fresh mapping");
        assert_eq!(
            core::slice::from_raw_parts(addr as *const u8, n),
            &data[..n]
        );
    }
    assert_eq!(pmem_sys_drain(), 0);
}

fuzz_target!(|calls: Vec<Call>| {
    let dir = scratch();
    let file = dir.join("file");
    std::fs::write(&file, vec![0u8; 64 * 1024]).expect("write the scratch file");
    let cdir = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let cfile = CString::new(file.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated paths.
    let (fd_rw, fd_ro, fd_dir) = unsafe {
        (
            libc::open(cfile.as_ptr(), libc::O_RDWR),
            libc::open(cfile.as_ptr(), libc::O_RDONLY),
            libc::open(cdir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY),
        )
    };
    assert!(fd_rw >= 0 && fd_ro >= 0 && fd_dir >= 0);
    let mut live: Vec<Live> = Vec::new();

    for call in calls.iter().take(32) {
        clear_errno();
        match call {
            Call::SetOption { name, value } => {
                let (n, v) = (c_text(name, &KNOBS), c_text(value, &VALUES));
                // SAFETY: NULL or NUL-terminated strings.
                let r = unsafe { pmem_sys_set_option(ptr(&n), ptr(&v)) };
                match r {
                    0 => assert!(
                        KNOBS
                            .iter()
                            .any(|k| n.as_ref().is_some_and(|n| n.as_bytes() == k.as_bytes()))
                    ),
                    -1 => failed("pmem_sys_set_option", Some(libc::EINVAL)),
                    r => panic!("pmem_sys_set_option returned {r}"),
                }
            }
            Call::GetOption { name } => {
                let n = c_text(name, &KNOBS);
                let known = KNOBS
                    .iter()
                    .any(|k| n.as_ref().is_some_and(|n| n.as_bytes() == k.as_bytes()));
                // SAFETY: NULL or a NUL-terminated string.
                let r = unsafe { pmem_sys_get_option(ptr(&n)) };
                assert_eq!(!r.is_null(), known, "get_option of {n:?}");
                if r.is_null() {
                    failed("pmem_sys_get_option", Some(libc::EINVAL));
                }
            }
            Call::MapFile {
                path,
                size,
                flags,
                raw_flags,
                mode,
            } => {
                let flags = if *raw_flags { *flags } else { flags & 0xf };
                let create = flags & PMEM_SYS_FILE_CREATE != 0;
                // Never allocate much: a created, non-sparse file is capped
                // at 1 MiB; sparse ones and existing files may ask for more.
                let size = if create && flags & PMEM_SYS_FILE_SPARSE == 0 {
                    (*size % (1 << 20)) as usize
                } else {
                    (*size % (1 << 36)) as usize
                };
                // Names inside the scratch directory only: no '/', no "..".
                let p = match path {
                    Text::Null => None,
                    Text::Known(0) => Some(cdir.clone()),
                    Text::Known(_) => Some(cfile.clone()),
                    Text::Raw(b) => {
                        let name: Vec<u8> = b
                            .iter()
                            .take(40)
                            .map(|&c| if c == b'/' || c == 0 { b'_' } else { c })
                            .collect();
                        let name = if name.is_empty() || name == b"." || name == b".." {
                            b"x".to_vec()
                        } else {
                            name
                        };
                        let mut full = dir.as_os_str().as_bytes().to_vec();
                        full.push(b'/');
                        full.extend_from_slice(&name);
                        Some(CString::new(full).unwrap())
                    }
                };
                let mut mapped = usize::MAX;
                // SAFETY: path NULL or NUL-terminated; mapped is writable.
                let a = unsafe {
                    pmem_sys_map_file(ptr(&p), size, flags, u32::from(*mode & 0o7777), &mut mapped)
                };
                if a.is_null() {
                    failed("pmem_sys_map_file", None);
                } else {
                    assert!(mapped > 0 && mapped != usize::MAX, "mapped size {mapped}");
                    if size != 0 {
                        assert_eq!(mapped, size);
                    }
                    check_new_mapping(a, mapped);
                    live.push(Live {
                        addr: a as usize,
                        len: mapped,
                    });
                }
            }
            Call::Memremap { fd, offset, size } => {
                let fd = match fd {
                    Fd::File => fd_rw,
                    Fd::ReadOnly => fd_ro,
                    Fd::Dir => fd_dir,
                    Fd::Raw(x) => {
                        // Only descriptors this input owns, or ones that are surely closed.
                        if [fd_rw, fd_ro, fd_dir].contains(x) || *x < 0 || *x > 100_000 {
                            *x
                        } else {
                            -1
                        }
                    }
                };
                let offset = if offset & 1 == 0 {
                    offset % (128 * 1024) & !4095
                } else {
                    *offset
                };
                let size = (*size % (1 << 30)) as usize;
                let a = memremap_pmem(fd, offset, size);
                if a.is_null() {
                    failed("memremap_pmem", None);
                } else {
                    assert!(
                        fd == fd_rw,
                        "memremap_pmem mapped fd {fd}, which is not a read-write file"
                    );
                    check_new_mapping(a, size);
                    live.push(Live {
                        addr: a as usize,
                        len: size,
                    });
                }
            }
            Call::Unmap { addr } => {
                let a = resolve(addr, &live);
                let r = memunmap_pmem(a as *mut libc::c_void);
                if let Some(i) = live.iter().position(|m| m.addr == a) {
                    assert_eq!(r, 0, "unmap of a live mapping");
                    live.swap_remove(i);
                } else {
                    assert_eq!(r, -1, "unmap of {a:#x}, not a mapping start");
                    failed("memunmap_pmem", Some(libc::EINVAL));
                }
            }
            Call::Granularity { addr, n } => {
                let a = resolve(addr, &live);
                let g = pmem_sys_granularity(a as *const libc::c_void, *n);
                if inside(a, *n, &live) {
                    assert!((0..=2).contains(&g), "granularity {g}");
                } else {
                    assert_eq!(g, -1, "granularity of [{a:#x}, +{n}) outside every mapping");
                    failed("pmem_sys_granularity", Some(libc::EINVAL));
                }
            }
            Call::IsPmem { addr, n } => {
                let a = resolve(addr, &live);
                let r = pmem_sys_is_pmem(a as *const libc::c_void, *n);
                if !inside(a, *n, &live) {
                    assert!(!r);
                    failed("pmem_sys_is_pmem", Some(libc::EINVAL));
                }
            }
            Call::MappingSize { addr } => {
                let a = resolve(addr, &live);
                let r = pmem_sys_mapping_size(a as *const libc::c_void);
                match live.iter().find(|m| m.addr == a) {
                    Some(m) => assert_eq!(r, m.len),
                    None => {
                        assert_eq!(r, 0);
                        failed("pmem_sys_mapping_size", Some(libc::EINVAL));
                    }
                }
            }
            Call::Reason { addr } => {
                let a = resolve(addr, &live);
                let r = pmem_sys_mapping_reason(a as *const libc::c_void);
                if inside(a, 1, &live) {
                    assert!(!r.is_null());
                } else {
                    assert!(r.is_null());
                    failed("pmem_sys_mapping_reason", Some(libc::EINVAL));
                }
            }
        }
    }

    for m in live.drain(..) {
        assert_eq!(memunmap_pmem(m.addr as *mut libc::c_void), 0);
        assert_eq!(
            memunmap_pmem(m.addr as *mut libc::c_void),
            -1,
            "second unmap"
        );
    }
    for name in KNOBS {
        let n = CString::new(name).unwrap();
        // SAFETY: a NUL-terminated name and NULL.
        assert_eq!(
            unsafe { pmem_sys_set_option(n.as_ptr(), core::ptr::null()) },
            0
        );
    }
    // SAFETY: descriptors opened above.
    unsafe {
        libc::close(fd_rw);
        libc::close(fd_ro);
        libc::close(fd_dir);
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(e.path());
    }
});
