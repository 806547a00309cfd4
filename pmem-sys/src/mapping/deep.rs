//! The deep flush: past the memory controller's write-pending queues.
//!
//! On a device-DAX mapping the kernel exposes the nvdimm region's
//! `deep_flush` attribute in sysfs (`/sys/bus/nd/devices/regionN/deep_flush`):
//! writing `1` to it flushes the region's queues to the media. Everywhere
//! else (a file, on DAX or not) `msync` of the range does what the kernel
//! can: it writes the page cache back, and on a DAX filesystem it flushes
//! the region too. The device behind an address is found from
//! `/proc/self/maps`, so any mapping works, not only this library's.

use super::{eadr, msync_range};
use crate::Error;
use crate::knobs;
use std::path::{Path, PathBuf};

/// The path of the file mapped at `addr`, from `/proc/self/maps`.
fn mapped_path(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (lo, hi) = f.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if !(lo..hi).contains(&addr) {
            return None;
        }
        // perms, offset, dev, inode, then the path (which may hold spaces).
        let path = f.nth(4).map(|first| {
            let rest: Vec<&str> = f.collect();
            std::iter::once(first)
                .chain(rest)
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        path.starts_with('/').then_some(path)
    })
}

/// The `deep_flush` attribute of the nvdimm region behind a device-DAX
/// character device `(major, minor)`, if sysfs has one.
pub(crate) fn deep_flush_attr(sysfs: &str, major: u32, minor: u32) -> Option<PathBuf> {
    let region = eadr::region_of(sysfs, "char", major, minor)?;
    let attr = Path::new(sysfs)
        .join("bus/nd/devices")
        .join(region)
        .join("deep_flush");
    attr.exists().then_some(attr)
}

/// The attribute for the mapping at `addr`, when it maps a device-DAX
/// character device.
fn attr_for(addr: usize, sysfs: &str) -> Option<PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = mapped_path(addr)?;
    let st = std::fs::metadata(path).ok()?;
    if !st.file_type().is_char_device() {
        return None;
    }
    deep_flush_attr(sysfs, libc::major(st.rdev()), libc::minor(st.rdev()))
}

/// Writes `1` to a `deep_flush` attribute.
pub(crate) fn write_deep_flush(call: &str, attr: &Path) -> Result<(), Error> {
    std::fs::write(attr, b"1").map_err(|e| {
        Error::os(
            e.raw_os_error().unwrap_or(libc::EIO),
            call,
            format_args!("{}", attr.display()),
            "writing 1 to the region's deep_flush",
        )
    })
}

/// The deep step of `deep_flush` for `[addr, addr + n)`, after the caller's
/// write-back and fence: the region's `deep_flush` on device-DAX, else a
/// page-rounded msync.
pub(crate) fn deep_sync(call: &str, addr: usize, n: usize) -> Result<(), Error> {
    let k = knobs::current();
    match attr_for(addr, k.sysfs_root()) {
        Some(attr) => write_deep_flush(call, &attr),
        None => msync_range(call, addr, n.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture sysfs: `dev/char/M:m` → a device under `regionN`, whose
    /// directory has a `deep_flush` attribute.
    #[test]
    fn the_attribute_is_found_through_the_region_and_written() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let dev = r.join("devices/ndbus0/region3/dax3.0/dax3.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(r.join("dev/char")).unwrap();
        std::os::unix::fs::symlink(&dev, r.join("dev/char/252:7")).unwrap();
        let region_dir = r.join("bus/nd/devices/region3");
        std::fs::create_dir_all(&region_dir).unwrap();
        let sysfs = r.to_str().unwrap();
        assert_eq!(
            deep_flush_attr(sysfs, 252, 7),
            None,
            "no attribute yet: msync is the fallback"
        );
        std::fs::write(region_dir.join("deep_flush"), b"0").unwrap();
        let attr = deep_flush_attr(sysfs, 252, 7).expect("the attribute");
        assert_eq!(attr, region_dir.join("deep_flush"));
        write_deep_flush("pmem_sys_deep_flush", &attr).unwrap();
        assert_eq!(std::fs::read(&attr).unwrap(), b"1");
        assert_eq!(deep_flush_attr(sysfs, 252, 8), None, "another device");
    }

    #[test]
    fn a_failed_write_names_the_call_and_the_attribute() {
        let e = write_deep_flush(
            "pmem_sys_deep_flush",
            Path::new("/nonexistent/region0/deep_flush"),
        )
        .unwrap_err();
        assert_eq!(e.errno, libc::ENOENT);
        assert!(e.message.contains("pmem_sys_deep_flush"), "{}", e.message);
        assert!(
            e.message.contains("/nonexistent/region0/deep_flush"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_mapped_path_is_read_from_proc_maps() {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(4096).unwrap();
        let m = unsafe_map(&f);
        assert_eq!(
            mapped_path(m).as_deref(),
            Some(f.path().to_str().unwrap()),
            "the file behind the mapping"
        );
        let stack = 0u8;
        assert_eq!(
            mapped_path(&stack as *const u8 as usize),
            None,
            "the stack is no file"
        );
    }

    #[allow(unsafe_code)]
    fn unsafe_map(f: &tempfile::NamedTempFile) -> usize {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of a 4 KiB file, left mapped for
        // the rest of the test process.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_file().as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p as usize
    }
}
