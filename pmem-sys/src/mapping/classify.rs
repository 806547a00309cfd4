//! Classification: what a file descriptor is (regular file or
//! device-DAX), where it lives, and the store granularity a mapping of it
//! really has, with the reason in words.

use super::{Granularity, eadr, page_size, sys};
use crate::Error;
use std::path::Path;

pub(super) fn fd_path(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("fd {fd}"))
}

/// Where a file lives, from mountinfo.
struct Mount {
    point: String,
    fstype: String,
    /// A `dax`, `dax=always` or `dax=inode` mount or superblock option.
    dax_option: Option<String>,
}

/// The mount of a device (the longest mount point that is a prefix of
/// `path`), from /proc/self/mountinfo.
fn mount_of(dev: libc::dev_t, path: &str) -> Option<Mount> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let mut best: Option<Mount> = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 6 || f[2] != want {
            continue;
        }
        let point = f[4].replace("\\040", " ");
        let fits = path.starts_with(&point) || !path.starts_with('/');
        if fits && best.as_ref().is_none_or(|b| point.len() > b.point.len()) {
            let mut options = f[5]
                .split(',')
                .chain(r.get(2).copied().unwrap_or("").split(','));
            let dax_option = options
                .find(|o| *o == "dax" || o.starts_with("dax="))
                .map(str::to_owned);
            best = Some(Mount {
                point,
                fstype: r.first().copied().unwrap_or("?").to_owned(),
                dax_option,
            });
        }
    }
    best
}

/// What kind of file a descriptor is, once checked.
pub(super) enum Target {
    Regular {
        size: u64,
    },
    DeviceDax {
        size: u64,
        align: usize,
        region: Option<String>,
    },
}

fn read_sysfs_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Checks `fd` in the order the contract gives: open, file type, access mode
/// (read-write, or readable when `writable` is false).
pub(super) fn check_fd(
    call: &str,
    fd: i32,
    sysfs: &str,
    writable: bool,
) -> Result<(Target, libc::stat), Error> {
    if fd < 0 {
        return Err(Error::new(
            libc::EBADF,
            call,
            format_args!("fd {fd}"),
            "not a file descriptor",
        ));
    }
    let st = sys::fstat(fd).map_err(|e| Error::os(e, call, format_args!("fd {fd}"), "fstat"))?;
    let target = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Target::Regular {
            size: st.st_size as u64,
        },
        libc::S_IFCHR => {
            let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
            let base = Path::new(sysfs).join(format!("dev/char/{maj}:{min}"));
            let subsystem = std::fs::read_link(base.join("subsystem")).ok();
            let is_dax = subsystem
                .as_ref()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n == "dax");
            if !is_dax {
                return Err(Error::new(
                    libc::ENODEV,
                    call,
                    format_args!("fd {fd} ({})", fd_path(fd)),
                    "a character device that is not device-DAX",
                ));
            }
            let size = read_sysfs_u64(&base.join("size")).unwrap_or(0);
            let align = read_sysfs_u64(&base.join("align")).unwrap_or(2 << 20) as usize;
            let region = eadr::region_of(sysfs, "char", maj, min);
            Target::DeviceDax {
                size,
                align: align.max(page_size()),
                region,
            }
        }
        kind => {
            let what = match kind {
                libc::S_IFDIR => "a directory",
                libc::S_IFIFO => "a pipe",
                libc::S_IFSOCK => "a socket",
                libc::S_IFBLK => "a block device (map a file on a DAX filesystem, or device-DAX)",
                _ => "not a regular file",
            };
            return Err(Error::new(
                libc::EINVAL,
                call,
                format_args!("fd {fd} ({})", fd_path(fd)),
                what,
            ));
        }
    };
    let mode =
        sys::access_mode(fd).map_err(|e| Error::os(e, call, format_args!("fd {fd}"), "fcntl"))?;
    if mode != libc::O_RDWR && (writable || mode != libc::O_RDONLY) {
        let how = if mode == libc::O_RDONLY {
            "opened read-only"
        } else {
            "opened write-only"
        };
        return Err(Error::new(
            libc::EACCES,
            call,
            format_args!("fd {fd} ({})", fd_path(fd)),
            if writable {
                format!("{how}; a read-write descriptor is required for a shared writable mapping")
            } else {
                format!("{how}; a readable descriptor is required for a read-only mapping")
            },
        ));
    }
    Ok((target, st))
}

/// The alignment that lets a mapping of `len` bytes use huge pages.
pub(super) fn huge_align(len: usize) -> usize {
    const MIB2: usize = 2 << 20;
    const GIB1: usize = 1 << 30;
    if len >= 2 * GIB1 {
        GIB1
    } else if len >= MIB2 {
        MIB2
    } else {
        page_size()
    }
}

pub(super) fn size_as_usize(s: &u64) -> usize {
    usize::try_from(*s).unwrap_or(usize::MAX)
}

/// The granularity a mapping really has, and why.
pub(super) fn classify(
    target: &Target,
    st: &libc::stat,
    path: &str,
    sync_refused: Option<i32>,
    sysfs: &str,
) -> (Granularity, String) {
    match target {
        Target::DeviceDax { region, .. } => {
            let d = eadr::domain(sysfs, region.as_deref());
            if d.eadr {
                (
                    Granularity::Byte,
                    format!(
                        "device-DAX {path}; {}: byte granularity (eADR), no flush needed",
                        d.note
                    ),
                )
            } else {
                (
                    Granularity::CacheLine,
                    format!(
                        "device-DAX {path}; {}: cache-line granularity, durability by flush and fence",
                        d.note
                    ),
                )
            }
        }
        Target::Regular { .. } => {
            let m = mount_of(st.st_dev, path).unwrap_or(Mount {
                point: "?".into(),
                fstype: "unknown filesystem".into(),
                dax_option: None,
            });
            let (mnt, fstype) = (&m.point, &m.fstype);
            match sync_refused {
                Some(e) => {
                    let why = match &m.dax_option {
                        // dax=inode, or a file that cannot be DAX: the mount
                        // alone does not decide.
                        Some(opt) => format!(
                            "{mnt} is mounted with {opt} ({fstype}) but {path} is not a DAX file"
                        ),
                        None => format!("{mnt} is not a DAX mount ({fstype})"),
                    };
                    (
                        Granularity::Page,
                        format!(
                            "MAP_SYNC refused ({}): {why}; page granularity, durability by msync",
                            sys::errno_name(e)
                        ),
                    )
                }
                None => {
                    let region = eadr::region_of(
                        sysfs,
                        "block",
                        libc::major(st.st_dev),
                        libc::minor(st.st_dev),
                    );
                    let d = eadr::domain(sysfs, region.as_deref());
                    if d.eadr {
                        (
                            Granularity::Byte,
                            format!(
                                "MAP_SYNC accepted: {mnt} is a DAX mount ({fstype}); {}: byte granularity (eADR), no flush needed",
                                d.note
                            ),
                        )
                    } else {
                        (
                            Granularity::CacheLine,
                            format!(
                                "MAP_SYNC accepted: {mnt} is a DAX mount ({fstype}); {}: cache-line granularity, durability by flush and fence",
                                d.note
                            ),
                        )
                    }
                }
            }
        }
    }
}
