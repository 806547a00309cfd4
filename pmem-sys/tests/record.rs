//! The runtime recorder end to end: start, map, stores through the API and
//! through a pointer, write-back, fence, persist, unmap, stop; then the
//! trace read back record by record, with the sites naming this file.
//! (One test: recording is process-wide.)

use pmem_sys::record::format::{Call, Data, Reader, Record};
use pmem_sys::{MapFlags, mapping};

#[test]
fn a_recorded_run_reads_back_in_program_order_with_its_sites() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let file = dir.path().join("pool");
    // Judged by persistent memory's rules whatever the file system.
    pmem_sys::engine::knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", Some("cache_line")).unwrap();
    pmem_sys::record::start(&trace).unwrap();
    assert_eq!(
        pmem_sys::record::start(&trace).unwrap_err().errno,
        libc::EBUSY,
        "a second start is refused"
    );
    let (addr, len) = mapping::map_file(&file, 4096, MapFlags::CREATE, 0o600).unwrap();
    let p = addr as *mut u8;
    let record = [7u8; 16];
    // SAFETY: all inside the 4096-byte mapping just made.
    unsafe {
        pmem_sys::memcpy_to_pmem(p.add(64), record.as_ptr(), 16);
        pmem_sys::wmb_pmem();
        p.add(200).write_volatile(9);
        pmem_sys::persist(p.add(200), 1).unwrap();
        pmem_sys::memset_pmem(p.add(300), 5, 10);
        pmem_sys::arch_wb_cache_pmem(p.add(300), 10);
        p.add(1000).write_volatile(3); // left for the end of recording
    }
    mapping::unmap(addr).unwrap();
    pmem_sys::record::stop().unwrap();
    assert_eq!(pmem_sys::record::stop().unwrap_err().errno, libc::EINVAL);
    pmem_sys::engine::knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", None).unwrap();

    let mut rd = Reader::new(std::fs::File::open(&trace).unwrap()).unwrap();
    let mut sites = std::collections::HashMap::new();
    let mut events = Vec::new();
    while let Some(r) = rd.next_record().unwrap() {
        match r {
            Record::Site { id, text } => {
                sites.insert(id, text);
            }
            r => events.push(r),
        }
    }
    assert!(!rd.truncated);
    let site = |id: &u32| sites.get(id).cloned().unwrap_or_default();
    let shape: Vec<String> = events
        .iter()
        .map(|e| match e {
            Record::Map { call, initial, .. } => format!("map {} {}", call.name(), initial.len()),
            Record::Store {
                call,
                offset,
                written_back,
                data,
                ..
            } => format!(
                "store {} {offset} {} {written_back}",
                call.name(),
                data.len()
            ),
            Record::WriteBack {
                call, offset, len, ..
            } => format!("wb {} {offset} {len}", call.name()),
            Record::Fence { call, .. } => format!("fence {}", call.name()),
            Record::Persist {
                call, offset, len, ..
            } => format!("persist {} {offset} {len}", call.name()),
            Record::Msync { .. } => "msync".into(),
            Record::Unmap { .. } => "unmap".into(),
            Record::End { .. } => "end".into(),
            Record::Site { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(
        shape,
        [
            format!("map map_file {len}"),
            "store memcpy_to_pmem 64 16 true".into(),
            "fence wmb_pmem".into(),
            "store direct store 200 1 false".into(),
            "persist persist 200 1".into(),
            "store memset_pmem 300 10 true".into(),
            "wb arch_wb_cache_pmem 300 10".into(),
            "store direct store 1000 1 false".into(),
            "unmap".into(),
            "end".into(),
        ]
    );
    match &events[1] {
        Record::Store { data, site: s, .. } => {
            assert_eq!(data, &Data::Bytes(vec![7; 16]));
            assert!(site(s).contains("record.rs:"), "site {:?}", site(s));
            assert!(site(s).contains("a_recorded_run"), "site {:?}", site(s));
        }
        e => panic!("{e:?}"),
    }
    match &events[5] {
        Record::Store { data, .. } => assert_eq!(data, &Data::Fill(5, 10)),
        e => panic!("{e:?}"),
    }
    // The direct store is attributed to the call after it.
    match (&events[3], &events[4]) {
        (Record::Store { site: a, call, .. }, Record::Persist { site: b, .. }) => {
            assert_eq!(*call, Call::Direct);
            assert_eq!(a, b);
        }
        e => panic!("{e:?}"),
    }
}
