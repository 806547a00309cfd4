//! `pmem_has_auto_flush`: does every nvdimm region flush CPU caches on
//! power loss (eADR)? Read from sysfs as PMDK reads it, under the root the
//! engine's `PMEM_SYS_SYSFS_ROOT` knob names (so tests can use fixtures).

use std::path::Path;

/// 1 when every region under `<root>/bus/nd/devices` has
/// `persistence_domain` = `cpu_cache`; 0 when there is no such directory,
/// no region, or a region without that domain (or without the attribute);
/// -1 when a directory or attribute cannot be read or is malformed (empty,
/// no trailing newline).
pub fn has_auto_flush(sysfs_root: &str) -> i32 {
    let devices = Path::new(sysfs_root).join("bus/nd/devices");
    if !devices.is_dir() {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir(&devices) else {
        return -1;
    };
    // Regions are symbolic links named region<N>; sorted so that the
    // answer never depends on directory order.
    let mut regions: Vec<_> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter(|e| e.file_name().to_string_lossy().contains("region"))
        .map(|e| e.path())
        .collect();
    regions.sort();
    let mut all = 0;
    for region in regions {
        all = region_is_cpu_cache(&region);
        if all != 1 {
            break;
        }
    }
    all
}

fn region_is_cpu_cache(region: &Path) -> i32 {
    let attr = region.join("persistence_domain");
    match std::fs::read(&attr) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // No attribute: the platform does not say; not eADR. A region
            // directory that cannot be listed at all is an error.
            if region.is_dir() { 0 } else { -1 }
        }
        Err(_) => -1,
        Ok(v) => match v.strip_suffix(b"\n") {
            Some(b"") | None => -1,
            Some(b"cpu_cache") => 1,
            Some(_) => 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs fixture: regions with the given persistence_domain contents
    /// (`None`: no attribute).
    fn fixture(regions: &[Option<&[u8]>]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let devices = d.path().join("bus/nd/devices");
        std::fs::create_dir_all(&devices).unwrap();
        for (i, dom) in regions.iter().enumerate() {
            let real = d.path().join(format!("devices/ndbus0/region{i}"));
            std::fs::create_dir_all(&real).unwrap();
            if let Some(v) = dom {
                std::fs::write(real.join("persistence_domain"), v).unwrap();
            }
            symlink(&real, devices.join(format!("region{i}"))).unwrap();
        }
        // Entries that are not regions are ignored.
        std::fs::create_dir_all(d.path().join("devices/ndbus0/ndbus0")).unwrap();
        symlink(
            d.path().join("devices/ndbus0/ndbus0"),
            devices.join("ndbus0"),
        )
        .unwrap();
        d
    }

    fn run(d: &tempfile::TempDir) -> i32 {
        has_auto_flush(d.path().to_str().unwrap())
    }

    #[test]
    fn every_region_must_be_cpu_cache() {
        assert_eq!(run(&fixture(&[Some(b"cpu_cache\n")])), 1);
        assert_eq!(
            run(&fixture(&[Some(b"cpu_cache\n"), Some(b"cpu_cache\n")])),
            1
        );
        assert_eq!(
            run(&fixture(&[
                Some(b"cpu_cache\n"),
                Some(b"memory_controller\n")
            ])),
            0
        );
        assert_eq!(run(&fixture(&[Some(b"cpu_cache\n"), None])), 0);
    }

    #[test]
    fn none_is_zero_and_malformed_is_minus_one() {
        assert_eq!(run(&fixture(&[])), 0, "no region");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(run(&empty), 0, "no bus/nd/devices directory");
        assert_eq!(run(&fixture(&[Some(b"")])), -1, "empty attribute");
        assert_eq!(run(&fixture(&[Some(b"cpu_cache")])), -1, "no newline");
        assert_eq!(run(&fixture(&[Some(b"\n")])), -1, "only a newline");
    }
}
