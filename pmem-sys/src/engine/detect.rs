//! What the CPU has. One ordered ladder per architecture, read once.

use std::sync::OnceLock;

/// CPU features the engine cares about. Fields of other architectures stay
/// false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// x86_64: SSE2 (always present on x86_64).
    pub sse2: bool,
    /// x86_64: AVX with the OS saving YMM state (XCR0 bits 1 and 2).
    pub avx: bool,
    /// x86_64: AVX2 (`CPUID.7.0:EBX[5]`) with the OS's consent.
    pub avx2: bool,
    /// x86_64: AVX-512F (`CPUID.7.0:EBX[16]`) with the OS saving opmask and
    /// ZMM state (XCR0 bits 5, 6 and 7).
    pub avx512f: bool,
    /// x86_64: CLFLUSH (`CPUID.1:EDX[19]`).
    pub clflush: bool,
    /// x86_64: CLFLUSHOPT (`CPUID.7.0:EBX[23]`).
    pub clflushopt: bool,
    /// x86_64: CLWB (`CPUID.7.0:EBX[24]`).
    pub clwb: bool,
    /// x86_64: the CPU vendor is AMD (chooses the default threshold).
    pub amd: bool,
    /// aarch64: DC CVAP, clean to the point of persistence (HWCAP_DCPOP).
    pub dc_cvap: bool,
}

impl Features {
    /// Space-separated names of the features present, as in /proc/cpuinfo.
    pub fn names(&self) -> String {
        let all = [
            (self.sse2, "sse2"),
            (self.avx, "avx"),
            (self.avx2, "avx2"),
            (self.avx512f, "avx512f"),
            (self.clflush, "clflush"),
            (self.clflushopt, "clflushopt"),
            (self.clwb, "clwb"),
            (self.dc_cvap, "dcpop"),
        ];
        all.iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The features of this CPU, detected on first call.
pub fn features() -> &'static Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn detect() -> Features {
    use core::arch::x86_64::{__cpuid_count, CpuidResult};

    fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
        // SAFETY: CPUID exists on every x86_64 CPU; asking for a leaf beyond
        // the maximum returns zeros or the highest leaf, never faults.
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid_count(leaf, sub)
        }
    }

    fn xcr0() -> u64 {
        let (lo, hi): (u32, u32);
        // SAFETY: only called when CPUID.1:ECX.OSXSAVE[27] is set, which
        // means the OS enabled XGETBV; ECX=0 selects XCR0.
        unsafe {
            core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
                             options(nomem, nostack, preserves_flags));
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }

    let bit = |reg: u32, n: u32| reg & (1 << n) != 0;
    let leaf0 = cpuid(0, 0);
    let max_leaf = leaf0.eax;
    // "AuthenticAMD": EBX, EDX, ECX.
    let amd = leaf0.ebx == 0x6874_7541 && leaf0.edx == 0x6974_6e65 && leaf0.ecx == 0x444d_4163;
    let l1 = cpuid(1, 0);
    let l7 = if max_leaf >= 7 {
        cpuid(7, 0)
    } else {
        CpuidResult {
            eax: 0,
            ebx: 0,
            ecx: 0,
            edx: 0,
        }
    };

    let osxsave = bit(l1.ecx, 27);
    let xcr0 = if osxsave { xcr0() } else { 0 };
    // The OS saves XMM and YMM state: required before touching YMM registers.
    let os_avx = xcr0 & 0b110 == 0b110;
    // ... and opmask, upper ZMM0-15 and ZMM16-31: required for AVX-512.
    let os_avx512 = os_avx && xcr0 & 0b1110_0000 == 0b1110_0000;
    let avx = os_avx && bit(l1.ecx, 28);

    Features {
        sse2: bit(l1.edx, 26),
        avx,
        avx2: avx && bit(l7.ebx, 5),
        avx512f: os_avx512 && bit(l7.ebx, 16),
        clflush: bit(l1.edx, 19),
        clflushopt: bit(l7.ebx, 23),
        clwb: bit(l7.ebx, 24),
        amd,
        dc_cvap: false,
    }
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Features {
    // HWCAP_DCPOP: DC CVAP is implemented (Linux arch/arm64 hwcap.h).
    const HWCAP_DCPOP: libc::c_ulong = 1 << 16;
    #[allow(unsafe_code)]
    // SAFETY: getauxval has no preconditions; it returns 0 for unknown types.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    Features {
        dc_cvap: hwcap & HWCAP_DCPOP != 0,
        ..Features::default()
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Features {
    Features::default()
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn cpuid_agrees_with_proc_cpuinfo() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
        let flags: Vec<&str> = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line")
            .split_whitespace()
            .collect();
        let f = features();
        let checks = [
            ("clflush", f.clflush),
            ("clflushopt", f.clflushopt),
            ("clwb", f.clwb),
            ("avx2", f.avx2),
            ("avx512f", f.avx512f),
        ];
        for (name, ours) in checks {
            assert_eq!(
                flags.contains(&name),
                ours,
                "{name}: /proc/cpuinfo vs CPUID"
            );
        }
    }

    /// The write-back tables issue PREFETCHW (`arch::x86_64`), on the
    /// premise that a CPU with CLWB or CLFLUSHOPT implements it
    /// (`3dnowprefetch` in /proc/cpuinfo).
    #[test]
    fn prefetchw_comes_with_clwb() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
        let flags = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line");
        let has = |name: &str| flags.split_whitespace().any(|f| f == name);
        if has("clwb") || has("clflushopt") {
            assert!(has("3dnowprefetch"), "CLWB or CLFLUSHOPT without PREFETCHW");
        } else {
            println!(
                "SKIPPED: prefetchw_comes_with_clwb (this CPU has neither CLWB nor CLFLUSHOPT)"
            );
        }
    }

    #[test]
    fn names_list_what_is_present() {
        let f = Features {
            sse2: true,
            clwb: true,
            ..Features::default()
        };
        assert_eq!(f.names(), "sse2 clwb");
    }
}
