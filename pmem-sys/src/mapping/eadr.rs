//! Is the CPU cache inside the persistence domain (eADR)? Linux says so per
//! nvdimm region in `/sys/bus/nd/devices/regionN/persistence_domain`
//! (`cpu_cache`, `memory_controller`, or absent).

use std::fs;
use std::path::Path;

/// What sysfs says about the region behind a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// True only when the caches are in the persistence domain.
    pub eadr: bool,
    /// For the reason string, e.g. `region0 persistence_domain=cpu_cache`.
    pub note: String,
}

fn read_domain(region_dir: &Path) -> Option<String> {
    fs::read_to_string(region_dir.join("persistence_domain"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The `regionN` directory behind a device (`kind` is `block` or `char`),
/// found by resolving `/sys/dev/<kind>/<major>:<minor>`.
pub fn region_of(sysfs_root: &str, kind: &str, major: u32, minor: u32) -> Option<String> {
    let link = Path::new(sysfs_root)
        .join("dev")
        .join(kind)
        .join(format!("{major}:{minor}"));
    let real = fs::canonicalize(link).ok()?;
    real.components()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|c| {
            c.strip_prefix("region")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The domain of `region` when it is known and reports one; otherwise every
/// region on the nd bus must report `cpu_cache` (and there must be one).
pub fn domain(sysfs_root: &str, region: Option<&str>) -> Domain {
    let devices = Path::new(sysfs_root).join("bus/nd/devices");
    if let Some(r) = region
        && let Some(d) = read_domain(&devices.join(r))
    {
        return Domain {
            eadr: d == "cpu_cache",
            note: format!("{r} persistence_domain={d}"),
        };
    }
    let Ok(entries) = fs::read_dir(&devices) else {
        return Domain {
            eadr: false,
            note: format!("no nvdimm bus ({} missing): no eADR", devices.display()),
        };
    };
    // Real sysfs lists devices as symlinks; anything else is not a region.
    let mut regions: Vec<(String, Option<String>)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("region"))
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                read_domain(&e.path()),
            )
        })
        .collect();
    regions.sort();
    if regions.is_empty() {
        return Domain {
            eadr: false,
            note: "no nvdimm region found: no eADR".to_owned(),
        };
    }
    let eadr = regions
        .iter()
        .all(|(_, d)| d.as_deref() == Some("cpu_cache"));
    let list: Vec<String> = regions
        .iter()
        .map(|(r, d)| match d {
            Some(d) if !d.is_empty() => format!("{r} persistence_domain={d}"),
            Some(_) => format!("{r} persistence_domain empty"),
            None => format!("{r} without persistence_domain"),
        })
        .collect();
    Domain {
        eadr,
        note: list.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Builds a fake sysfs: `regions` are (name, Some(domain) | None, is_symlink).
    fn fixture(
        regions: &[(&str, Option<&str>, bool)],
        extra: &[&str],
        with_bus: bool,
    ) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        if !with_bus {
            return root;
        }
        let devices = root.path().join("bus/nd/devices");
        let real = root.path().join("devices/ndbus0");
        fs::create_dir_all(&devices).unwrap();
        fs::create_dir_all(&real).unwrap();
        for (name, dom, link) in regions {
            let dir = if *link {
                real.join(name)
            } else {
                devices.join(name)
            };
            fs::create_dir_all(&dir).unwrap();
            if let Some(d) = dom {
                fs::write(dir.join("persistence_domain"), d).unwrap();
            }
            if *link {
                symlink(&dir, devices.join(name)).unwrap();
            }
        }
        for name in extra {
            let dir = real.join(name);
            fs::create_dir_all(&dir).unwrap();
            symlink(&dir, devices.join(name)).unwrap();
        }
        root
    }

    fn eadr(root: &tempfile::TempDir) -> bool {
        domain(root.path().to_str().unwrap(), None).eadr
    }

    #[test]
    fn the_nine_fixtures() {
        // 1. no bus directory
        assert!(!eadr(&fixture(&[], &[], false)));
        // 2. regions without persistence_domain
        assert!(!eadr(&fixture(
            &[("region0", None, true), ("region1", None, true)],
            &[],
            true
        )));
        // 3. region entries that are directories, not symlinks: not regions
        assert!(!eadr(&fixture(
            &[("region0", Some("cpu_cache"), false)],
            &[],
            true
        )));
        // 4. other files only
        assert!(!eadr(&fixture(
            &[],
            &["namespace0.0", "btt0.0", "ndbus0"],
            true
        )));
        // 5. a value of " \n"
        assert!(!eadr(&fixture(
            &[("region0", Some(" \n"), true)],
            &[],
            true
        )));
        // 6. one empty, one memory_controller
        assert!(!eadr(&fixture(
            &[
                ("region0", Some(""), true),
                ("region1", Some("memory_controller\n"), true)
            ],
            &[],
            true
        )));
        // 7. both cpu_cache: the only BYTE case
        let both = fixture(
            &[
                ("region0", Some("cpu_cache\n"), true),
                ("region1", Some("cpu_cache\n"), true),
            ],
            &["namespace0.0"],
            true,
        );
        let d = domain(both.path().to_str().unwrap(), None);
        assert!(d.eadr);
        assert_eq!(
            d.note,
            "region0 persistence_domain=cpu_cache, region1 persistence_domain=cpu_cache"
        );
        // 8. cpu_caches and memory_controller
        assert!(!eadr(&fixture(
            &[
                ("region0", Some("cpu_caches\n"), true),
                ("region1", Some("memory_controller\n"), true)
            ],
            &[],
            true
        )));
        // 9. cpu_cache and memory_controller
        assert!(!eadr(&fixture(
            &[
                ("region0", Some("cpu_cache\n"), true),
                ("region1", Some("memory_controller\n"), true)
            ],
            &[],
            true
        )));
    }

    #[test]
    fn the_backing_region_decides_when_known() {
        let root = fixture(
            &[
                ("region0", Some("cpu_cache\n"), true),
                ("region1", Some("memory_controller\n"), true),
            ],
            &[],
            true,
        );
        let r = root.path().to_str().unwrap();
        assert!(domain(r, Some("region0")).eadr);
        assert!(!domain(r, Some("region1")).eadr);
        // An unknown region falls back to the all-regions rule.
        assert!(!domain(r, Some("region7")).eadr);
    }

    #[test]
    fn region_is_found_from_the_device_number() {
        let root = tempfile::tempdir().unwrap();
        let dev = root
            .path()
            .join("devices/platform/ndbus0/region3/namespace3.0/block/pmem3");
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(root.path().join("dev/block")).unwrap();
        symlink(&dev, root.path().join("dev/block/259:3")).unwrap();
        let r = root.path().to_str().unwrap();
        assert_eq!(region_of(r, "block", 259, 3).as_deref(), Some("region3"));
        assert_eq!(region_of(r, "block", 8, 0), None);
    }
}
