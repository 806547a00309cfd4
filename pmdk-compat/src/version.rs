//! `pmem_check_version`: the API version this library provides, and PMDK's
//! rule for accepting a caller's requirement.

/// `PMEM_MAJOR_VERSION` of PMDK 1.12's `libpmem.h`.
pub const MAJOR: u32 = 1;
/// `PMEM_MINOR_VERSION` of PMDK 1.12's `libpmem.h`.
pub const MINOR: u32 = 1;

/// `None` when a caller built for `major.minor` can use this library: the
/// major version must be equal and the minor one at most ours (minor
/// versions only add). Otherwise the reason, for `pmem_errormsg()`, in the
/// exact form PMDK 1.12 gives it (programs print it and tests compare it).
pub fn check(major: u32, minor: u32) -> Option<String> {
    if major != MAJOR {
        return Some(format!(
            "libpmem major version mismatch (need {major}, found {MAJOR})"
        ));
    }
    if minor > MINOR {
        return Some(format!(
            "libpmem minor version mismatch (need {minor}, found {MINOR})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_must_match_minor_may_be_lower() {
        assert_eq!(check(1, 0), None);
        assert_eq!(check(1, 1), None);
        let m = check(1, 2).unwrap();
        assert!(
            m.contains("minor version mismatch (need 2, found 1)"),
            "{m}"
        );
        for (maj, min) in [(0, 0), (2, 0), (2, 1), (u32::MAX, 0)] {
            assert_eq!(
                check(maj, min).unwrap(),
                format!("libpmem major version mismatch (need {maj}, found 1)")
            );
        }
    }
}
