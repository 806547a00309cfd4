//! The persistence model: which images a power failure could leave.
//!
//! [`Model`] replays a trace one record at a time; after each record (a
//! *crash point*) it knows, for every unit of every recorded file (a
//! 64-byte line, or a page on a page-granular mapping), the contents the
//! unit could hold on the media. A unit whose only candidate is its
//! current content is *certain*; the others are *uncertain*, and an image
//! is one choice of candidate per uncertain unit.
//!
//! The rules (x86-64, as the engine assumes; see the module docs of
//! [`crate::record`]):
//!
//! - A unit's candidates are its contents at every recorded point since the
//!   newest content known durable (its *floor*): an ordinary store may be
//!   evicted at any time, as a whole line, and never goes back.
//! - A write-back (a flush, or a store call that writes back or streams)
//!   captures the unit's content at that point; the calling thread's next
//!   fence makes it the floor, dropping older candidates.
//! - `msync` of a range makes its units' current contents the floor, on any
//!   granularity; `persist` is write-back plus fence (msync on a
//!   page-granular mapping).
//! - Byte granularity (eADR): an ordinary store (one found by the shadow)
//!   is durable at once; a store call of the library may have used
//!   non-temporal stores, so it waits for the thread's fence like a
//!   write-back.
//! - Page granularity: only msync makes a page durable; until then every
//!   content the page had since its floor is a candidate, as a whole page.
//!
//! Units are never torn: a candidate is always a whole line (or page), so
//! an aligned 8-byte store is never split, and neither is a larger store
//! inside one line (real hardware may split those; the model does not
//! enumerate such images).

use super::format::{Call, Data, Record};
use crate::granularity::Granularity;
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// One content a unit had, and the event after which it had it (0: before
/// the first event).
#[derive(Clone, Debug)]
pub struct Version {
    /// The unit's bytes.
    pub data: Box<[u8]>,
    /// Fingerprint of (file, unit, bytes).
    pub hash: u64,
    /// The event that produced it.
    pub event: usize,
}

/// A unit with more than one possible content.
#[derive(Clone, Debug, Default)]
struct UnitState {
    /// Oldest first; `versions[0]` is the floor, the last is current.
    versions: Vec<Version>,
}

/// A recorded file: its current content and the uncertain units.
#[derive(Clone, Debug)]
pub struct FileState {
    /// The path the workload used.
    pub path: String,
    /// Device number (with `ino`, the file's identity).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Unit size: the line size, or the page size for a page-granular file.
    pub unit: usize,
    /// The granularity of its first mapping.
    pub granularity: Granularity,
    /// The file's length as far as mappings reached.
    pub len: usize,
    /// Content as the program last wrote it (a whole number of units;
    /// bytes from `len` on are padding).
    pub current: Vec<u8>,
    units: BTreeMap<usize, UnitState>,
}

#[derive(Clone, Copy, Debug)]
struct MapRef {
    file: usize,
    file_offset: u64,
    len: u64,
    granularity: Granularity,
}

/// What one event was, for reports.
#[derive(Clone, Debug)]
pub struct EventInfo {
    /// The call.
    pub call: Call,
    /// What the record did: `store`, `write-back`, `fence`, ...
    pub what: &'static str,
    /// The recording thread.
    pub thread: u32,
    /// The site id (0: none).
    pub site: u32,
    /// The file and range it concerns, if any.
    pub range: Option<(usize, u64, u64)>,
}

/// A unit that is uncertain at a crash point and its candidates.
#[derive(Clone, Debug)]
pub struct Uncertain {
    /// The file.
    pub file: usize,
    /// Unit index in the file (byte offset = unit × unit size).
    pub unit: usize,
    /// Indices into the unit's versions, one per distinct content, oldest
    /// first (the last is the current content).
    pub candidates: Vec<usize>,
}

/// The model. Feed it records with [`Model::apply`].
#[derive(Clone, Debug)]
pub struct Model {
    line: usize,
    page: usize,
    /// Recorded files in order of first mapping.
    pub files: Vec<FileState>,
    maps: HashMap<u32, MapRef>,
    pending: HashMap<u32, Vec<(usize, usize, usize)>>,
    /// Site texts by id.
    pub sites: HashMap<u32, String>,
    /// Events applied so far; `events[i]` is event `i + 1`.
    pub events: Vec<EventInfo>,
    fp: u64,
}

fn unit_hash(file: usize, unit: usize, data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    (file, unit).hash(&mut h);
    h.write(data);
    h.finish()
}

/// Why a record could not be applied.
#[derive(Debug, PartialEq, Eq)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

impl Model {
    /// An empty model for a trace recorded with these line and page sizes.
    pub fn new(line: usize, page: usize) -> Self {
        Model {
            line,
            page,
            files: Vec::new(),
            maps: HashMap::new(),
            pending: HashMap::new(),
            sites: HashMap::new(),
            events: Vec::new(),
            fp: 0,
        }
    }

    /// The number of events applied (the current crash point).
    pub fn event(&self) -> usize {
        self.events.len()
    }

    /// A report's name for an event: `#N memcpy_to_pmem of [a, b) in
    /// FILE (thread T) at SITE`.
    pub fn describe_event(&self, n: usize) -> String {
        if n == 0 {
            return "#0 (before the first recorded call)".into();
        }
        let e = &self.events[n - 1];
        let mut s = format!("#{n} {}", e.call.name());
        if let Some((f, off, len)) = e.range {
            s.push_str(&format!(
                " [{:#x}, {:#x}) of {}",
                off,
                off + len,
                self.files[f].path
            ));
            if e.call == Call::Direct {
                s.push_str(" (made before the next call)");
            }
        } else if e.call != Call::End {
            s.push_str(&format!(" ({})", e.what));
        }
        s.push_str(&format!(" [thread {}]", e.thread));
        match self.sites.get(&e.site) {
            Some(t) => s.push_str(&format!(" at {t}")),
            None => s.push_str(" at an unknown site"),
        }
        s
    }

    fn info(
        &mut self,
        call: Call,
        what: &'static str,
        thread: u32,
        site: u32,
        range: Option<(usize, u64, u64)>,
    ) -> usize {
        self.events.push(EventInfo {
            call,
            what,
            thread,
            site,
            range,
        });
        self.events.len()
    }

    fn map_ref(&self, map: u32) -> Result<MapRef, ModelError> {
        self.maps
            .get(&map)
            .copied()
            .ok_or_else(|| ModelError(format!("record refers to mapping {map}, never mapped")))
    }

    /// Units of `f` touching `[off, off + len)`.
    fn units_of(&self, f: usize, off: u64, len: u64) -> std::ops::Range<usize> {
        let u = self.files[f].unit as u64;
        if len == 0 {
            return 0..0;
        }
        (off / u) as usize..(off + len).div_ceil(u) as usize
    }

    fn unit_bytes(&self, f: usize, u: usize) -> std::ops::Range<usize> {
        let a = u * self.files[f].unit;
        a..a + self.files[f].unit
    }

    /// Applies one record; returns the event number it became (Site
    /// records define a site and are not events: `None`).
    pub fn apply(&mut self, r: &Record) -> Result<Option<usize>, ModelError> {
        let e = match r {
            Record::Site { id, text } => {
                self.sites.insert(*id, text.clone());
                return Ok(None);
            }
            Record::Map {
                thread,
                site,
                call,
                map,
                granularity,
                file_offset,
                dev,
                ino,
                path,
                initial,
            } => {
                let found = self.files.iter().position(|f| {
                    (*ino != 0 && f.dev == *dev && f.ino == *ino) || (*ino == 0 && f.path == *path)
                });
                let f = match found {
                    Some(f) => f,
                    None => {
                        self.files.push(FileState {
                            path: path.clone(),
                            dev: *dev,
                            ino: *ino,
                            unit: if *granularity == Granularity::Page {
                                self.page
                            } else {
                                self.line
                            },
                            granularity: *granularity,
                            len: 0,
                            current: Vec::new(),
                            units: BTreeMap::new(),
                        });
                        self.files.len() - 1
                    }
                };
                let end = *file_offset as usize + initial.len();
                let unit = self.files[f].unit;
                if self.files[f].len < end {
                    self.files[f].len = end;
                }
                // `current` is kept a whole number of units long; each new
                // unit (zeros) enters the fingerprint.
                let old_units = self.files[f].current.len() / unit;
                let new_units = end.div_ceil(unit);
                if new_units > old_units {
                    self.files[f].current.resize(new_units * unit, 0);
                    let zero = vec![0u8; unit];
                    for u in old_units..new_units {
                        self.fp = self.fp.wrapping_add(unit_hash(f, u, &zero));
                    }
                }
                self.maps.insert(
                    *map,
                    MapRef {
                        file: f,
                        file_offset: *file_offset,
                        len: initial.len() as u64,
                        granularity: *granularity,
                    },
                );
                let e = self.info(
                    *call,
                    "map",
                    *thread,
                    *site,
                    Some((f, *file_offset, initial.len() as u64)),
                );
                // Content that differs from what the model holds was changed
                // outside the library (write(2), another process): durable.
                self.store_units(f, *file_offset, &Data::Bytes(initial.clone()), e, |_| {
                    Effect::Durable
                });
                e
            }
            Record::Unmap { thread, site, map } => {
                let m = self.map_ref(*map)?;
                self.maps.remove(map);
                self.info(
                    Call::Memunmap,
                    "unmap",
                    *thread,
                    *site,
                    Some((m.file, m.file_offset, m.len)),
                )
            }
            Record::Store {
                thread,
                site,
                call,
                map,
                offset,
                written_back,
                data,
            } => {
                let m = self.map_ref(*map)?;
                check_range(&m, *offset, data.len())?;
                let at = m.file_offset + offset;
                let e = self.info(
                    *call,
                    "store",
                    *thread,
                    *site,
                    Some((m.file, at, data.len())),
                );
                let effect = match (m.granularity, written_back) {
                    (Granularity::Page, _) => Effect::Dirty,
                    (Granularity::Byte, false) => Effect::Durable,
                    (_, false) => Effect::Dirty,
                    (_, true) => Effect::WrittenBack(*thread),
                };
                let pending = self.store_units(m.file, at, data, e, |_| effect);
                if let Effect::WrittenBack(t) = effect {
                    self.pending.entry(t).or_default().extend(pending);
                }
                e
            }
            Record::WriteBack {
                thread,
                site,
                call,
                map,
                offset,
                len,
            } => {
                let m = self.map_ref(*map)?;
                check_range(&m, *offset, *len)?;
                let at = m.file_offset + offset;
                let e = self.info(
                    *call,
                    "write-back",
                    *thread,
                    *site,
                    Some((m.file, at, *len)),
                );
                if m.granularity == Granularity::CacheLine {
                    self.write_back(*thread, m.file, at, *len);
                }
                e
            }
            Record::Fence { thread, site, call } => {
                let e = self.info(*call, "fence", *thread, *site, None);
                self.fence(*thread);
                e
            }
            Record::Msync {
                thread,
                site,
                map,
                offset,
                len,
            } => {
                let m = self.map_ref(*map)?;
                let len = (*len).min(m.len.saturating_sub(*offset));
                let at = m.file_offset + offset;
                let e = self.info(
                    Call::Msync,
                    "msync",
                    *thread,
                    *site,
                    Some((m.file, at, len)),
                );
                self.settle(m.file, at, len);
                e
            }
            Record::Persist {
                thread,
                site,
                call,
                map,
                offset,
                len,
            } => {
                let m = self.map_ref(*map)?;
                check_range(&m, *offset, *len)?;
                let at = m.file_offset + offset;
                let e = self.info(*call, "persist", *thread, *site, Some((m.file, at, *len)));
                match m.granularity {
                    Granularity::Page => self.settle(m.file, at, *len),
                    Granularity::CacheLine => {
                        self.write_back(*thread, m.file, at, *len);
                        self.fence(*thread);
                    }
                    Granularity::Byte => self.fence(*thread),
                }
                e
            }
            Record::End { thread } => self.info(Call::End, "end", *thread, 0, None),
        };
        Ok(Some(e))
    }

    /// Applies a store to the units it touches; returns (file, unit,
    /// event) for each touched unit, for a write-back to capture.
    fn store_units(
        &mut self,
        f: usize,
        at: u64,
        data: &Data,
        e: usize,
        effect: impl Fn(usize) -> Effect,
    ) -> Vec<(usize, usize, usize)> {
        let len = data.len();
        let mut touched = Vec::new();
        let mut bytes = vec![0u8; len as usize];
        data.apply(&mut bytes);
        for u in self.units_of(f, at, len) {
            let r = self.unit_bytes(f, u);
            let (ua, ub) = (r.start as u64, r.end as u64);
            let (a, b) = (ua.max(at), ub.min(at + len));
            let file = &mut self.files[f];
            let src = &bytes[(a - at) as usize..(b - at) as usize];
            let dst = &mut file.current[a as usize..b as usize];
            let changed = dst != src;
            if changed {
                let old_hash = unit_hash(f, u, &file.current[r.clone()]);
                let state = file.units.entry(u).or_insert_with(|| UnitState {
                    versions: vec![Version {
                        data: file.current[r.clone()].into(),
                        hash: old_hash,
                        event: e - 1,
                    }],
                });
                file.current[a as usize..b as usize].copy_from_slice(src);
                let new = &file.current[r.clone()];
                let hash = unit_hash(f, u, new);
                state.versions.push(Version {
                    data: new.into(),
                    hash,
                    event: e,
                });
                self.fp = self.fp.wrapping_sub(old_hash).wrapping_add(hash);
            }
            match effect(u) {
                Effect::Durable if changed => self.collapse(f, u),
                Effect::Durable => {}
                Effect::Dirty | Effect::WrittenBack(_) => {}
            }
            touched.push((f, u, e));
        }
        touched
    }

    fn write_back(&mut self, thread: u32, f: usize, at: u64, len: u64) {
        let units = self.units_of(f, at, len);
        let file = &self.files[f];
        let p: Vec<_> = file
            .units
            .range(units)
            .map(|(u, s)| (f, *u, s.versions.last().map_or(0, |v| v.event)))
            .collect();
        self.pending.entry(thread).or_default().extend(p);
    }

    fn fence(&mut self, thread: u32) {
        for (f, u, ev) in self.pending.remove(&thread).unwrap_or_default() {
            let Some(s) = self.files[f].units.get_mut(&u) else {
                continue;
            };
            // The newest version no later than the write-back is durable:
            // it becomes the floor.
            let q = s.versions.iter().rposition(|v| v.event <= ev).unwrap_or(0);
            s.versions.drain(..q);
            if s.versions.len() == 1 {
                self.files[f].units.remove(&u);
            }
        }
    }

    /// Makes the units touching the range certain at their current content.
    fn settle(&mut self, f: usize, at: u64, len: u64) {
        let units: Vec<usize> = self.files[f]
            .units
            .range(self.units_of(f, at, len))
            .map(|(u, _)| *u)
            .collect();
        for u in units {
            self.files[f].units.remove(&u);
        }
    }

    fn collapse(&mut self, f: usize, u: usize) {
        self.files[f].units.remove(&u);
    }

    /// The uncertain units now, file by file and in address order.
    pub fn uncertain(&self) -> Vec<Uncertain> {
        let mut out = Vec::new();
        for (f, file) in self.files.iter().enumerate() {
            for (u, s) in &file.units {
                let mut seen: Vec<u64> = Vec::new();
                let mut candidates = Vec::new();
                // Newest first, so a content seen twice counts as its newest
                // occurrence; then put them back oldest first.
                for (i, v) in s.versions.iter().enumerate().rev() {
                    if !seen.contains(&v.hash) {
                        seen.push(v.hash);
                        candidates.push(i);
                    }
                }
                if candidates.len() > 1 {
                    candidates.reverse();
                    out.push(Uncertain {
                        file: f,
                        unit: *u,
                        candidates,
                    });
                }
            }
        }
        out
    }

    /// The version `candidates[choice]` of an uncertain unit.
    pub fn version(&self, u: &Uncertain, choice: usize) -> &Version {
        &self.files[u.file].units[&u.unit].versions[u.candidates[choice]]
    }

    /// A fingerprint of the image that takes candidate `choice[i]` for
    /// `uncertain[i]` (equal images, equal fingerprints).
    pub fn fingerprint(&self, uncertain: &[Uncertain], choice: &[usize]) -> u64 {
        let mut fp = self.fp;
        for (u, c) in uncertain.iter().zip(choice) {
            let cur = self.version(u, u.candidates.len() - 1).hash;
            fp = fp.wrapping_sub(cur).wrapping_add(self.version(u, *c).hash);
        }
        fp
    }

    /// The bytes of file `f` in that image (`[0, len)`).
    pub fn image(&self, f: usize, uncertain: &[Uncertain], choice: &[usize]) -> Vec<u8> {
        let mut out = self.files[f].current.clone();
        for (u, c) in uncertain.iter().zip(choice) {
            if u.file == f {
                let r = self.unit_bytes(f, u.unit);
                out[r].copy_from_slice(&self.version(u, *c).data);
            }
        }
        out.truncate(self.files[f].len);
        out
    }

    /// Byte range of a unit in its file.
    pub fn unit_range(&self, f: usize, u: usize) -> std::ops::Range<usize> {
        self.unit_bytes(f, u)
    }
}

#[derive(Clone, Copy)]
enum Effect {
    Dirty,
    WrittenBack(u32),
    Durable,
}

fn check_range(m: &MapRef, off: u64, len: u64) -> Result<(), ModelError> {
    if off.checked_add(len).is_none_or(|e| e > m.len) {
        return Err(ModelError(format!(
            "range [{off}, {off}+{len}) outside its mapping of {} bytes",
            m.len
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: usize = 64;
    const PAGE: usize = 4096;

    fn map(g: Granularity, len: usize) -> Record {
        Record::Map {
            thread: 1,
            site: 0,
            call: Call::MapFile,
            map: 1,
            granularity: g,
            file_offset: 0,
            dev: 1,
            ino: 1,
            path: "f".into(),
            initial: vec![0; len],
        }
    }
    fn store(t: u32, off: u64, v: u8, n: u64, wb: bool) -> Record {
        Record::Store {
            thread: t,
            site: 0,
            call: if wb { Call::MemcpyToPmem } else { Call::Direct },
            map: 1,
            offset: off,
            written_back: wb,
            data: Data::Fill(v, n),
        }
    }
    fn wb(t: u32, off: u64, n: u64) -> Record {
        Record::WriteBack {
            thread: t,
            site: 0,
            call: Call::ArchWbCachePmem,
            map: 1,
            offset: off,
            len: n,
        }
    }
    fn fence(t: u32) -> Record {
        Record::Fence {
            thread: t,
            site: 0,
            call: Call::WmbPmem,
        }
    }
    fn msync(off: u64, n: u64) -> Record {
        Record::Msync {
            thread: 1,
            site: 0,
            map: 1,
            offset: off,
            len: n,
        }
    }
    fn persist(t: u32, off: u64, n: u64) -> Record {
        Record::Persist {
            thread: t,
            site: 0,
            call: Call::Persist,
            map: 1,
            offset: off,
            len: n,
        }
    }

    /// Every image's file content at the current point, as a set.
    fn images(m: &Model) -> Vec<Vec<u8>> {
        let un = m.uncertain();
        let mut choice = vec![0; un.len()];
        let mut out = Vec::new();
        loop {
            out.push(m.image(0, &un, &choice));
            let mut i = 0;
            loop {
                if i == un.len() {
                    out.sort();
                    out.dedup();
                    return out;
                }
                choice[i] += 1;
                if choice[i] < un[i].candidates.len() {
                    break;
                }
                choice[i] = 0;
                i += 1;
            }
        }
    }

    /// Line `l`'s first byte in every image.
    fn line_values(m: &Model, l: usize) -> Vec<u8> {
        let mut v: Vec<u8> = images(m).iter().map(|i| i[l * LINE]).collect();
        v.sort();
        v.dedup();
        v
    }

    fn run(g: Granularity, len: usize, rs: &[Record]) -> Model {
        let mut m = Model::new(LINE, PAGE);
        m.apply(&map(g, len)).unwrap();
        for r in rs {
            m.apply(r).unwrap();
        }
        m
    }

    #[test]
    fn an_ordinary_store_is_uncertain_until_written_back_and_fenced() {
        let g = Granularity::CacheLine;
        assert_eq!(
            line_values(&run(g, 256, &[store(1, 0, 7, 8, false)]), 0),
            [0, 7]
        );
        // Written back but not fenced: still either.
        let m = run(g, 256, &[store(1, 0, 7, 8, false), wb(1, 0, 8)]);
        assert_eq!(line_values(&m, 0), [0, 7]);
        // Fenced: durable.
        let m = run(g, 256, &[store(1, 0, 7, 8, false), wb(1, 0, 8), fence(1)]);
        assert_eq!(images(&m).len(), 1);
        assert_eq!(line_values(&m, 0), [7]);
        // A fence without the write-back changes nothing.
        let m = run(g, 256, &[store(1, 0, 7, 8, false), fence(1)]);
        assert_eq!(line_values(&m, 0), [0, 7]);
    }

    #[test]
    fn a_line_holds_any_content_it_had_since_its_floor() {
        let g = Granularity::CacheLine;
        let m = run(
            g,
            256,
            &[
                store(1, 0, 1, 8, false),
                store(1, 0, 2, 8, false),
                store(1, 0, 3, 8, false),
            ],
        );
        assert_eq!(line_values(&m, 0), [0, 1, 2, 3]);
        // Written back after the second store, fenced after the third: the
        // floor is the second content.
        let m = run(
            g,
            256,
            &[
                store(1, 0, 1, 8, false),
                store(1, 0, 2, 8, false),
                wb(1, 0, 1),
                store(1, 0, 3, 8, false),
                fence(1),
            ],
        );
        assert_eq!(line_values(&m, 0), [2, 3]);
    }

    #[test]
    fn lines_are_independent_and_whole() {
        let g = Granularity::CacheLine;
        // One store over two lines: four images, each line old or new as a
        // whole.
        let m = run(g, 256, &[store(1, 60, 9, 8, true)]);
        let im = images(&m);
        assert_eq!(im.len(), 4);
        for i in &im {
            assert!(i[60..64].iter().all(|b| *b == i[60]));
            assert!(i[64..68].iter().all(|b| *b == i[64]));
        }
        assert_eq!(m.uncertain().len(), 2);
    }

    #[test]
    fn a_fence_completes_only_its_own_threads_write_backs() {
        let g = Granularity::CacheLine;
        let m = run(g, 256, &[store(2, 0, 5, 8, true), fence(1)]);
        assert_eq!(line_values(&m, 0), [0, 5]);
        let m = run(g, 256, &[store(2, 0, 5, 8, true), fence(1), fence(2)]);
        assert_eq!(line_values(&m, 0), [5]);
    }

    #[test]
    fn persist_is_write_back_and_fence_and_fences_the_threads_other_write_backs() {
        let g = Granularity::CacheLine;
        let m = run(
            g,
            256,
            &[
                store(1, 0, 5, 8, false),
                store(1, 64, 6, 8, true),
                persist(1, 0, 8),
            ],
        );
        assert_eq!(images(&m).len(), 1);
        // Persist of another range does not write back line 0.
        let m = run(g, 256, &[store(1, 0, 5, 8, false), persist(1, 128, 8)]);
        assert_eq!(line_values(&m, 0), [0, 5]);
    }

    #[test]
    fn byte_granularity_makes_ordinary_stores_durable_and_library_stores_wait_for_the_fence() {
        let g = Granularity::Byte;
        let m = run(g, 256, &[store(1, 0, 5, 8, false)]);
        assert_eq!(line_values(&m, 0), [5]);
        let m = run(g, 256, &[store(1, 0, 5, 8, true)]);
        assert_eq!(line_values(&m, 0), [0, 5]);
        let m = run(g, 256, &[store(1, 0, 5, 8, true), fence(1)]);
        assert_eq!(line_values(&m, 0), [5]);
    }

    #[test]
    fn page_granularity_needs_msync_page_by_page() {
        let g = Granularity::Page;
        let m = run(
            g,
            2 * PAGE,
            &[
                store(1, 0, 5, 8, true),
                store(1, PAGE as u64, 6, 8, true),
                fence(1),
            ],
        );
        // Fences do nothing for the page cache; units are pages.
        assert_eq!(m.uncertain().len(), 2);
        assert_eq!(images(&m).len(), 4);
        let m = run(
            g,
            2 * PAGE,
            &[
                store(1, 0, 5, 8, true),
                store(1, PAGE as u64, 6, 8, true),
                msync(0, PAGE as u64),
            ],
        );
        let un = m.uncertain();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].unit, 1);
        let m = run(g, 2 * PAGE, &[store(1, 0, 5, 8, true), persist(1, 0, 8)]);
        assert!(m.uncertain().is_empty());
    }

    #[test]
    fn msync_settles_cache_line_mappings_too() {
        let m = run(
            Granularity::CacheLine,
            256,
            &[store(1, 0, 5, 200, false), msync(0, 4096)],
        );
        assert!(m.uncertain().is_empty());
    }

    #[test]
    fn a_content_seen_twice_is_one_candidate_and_fingerprints_follow_content() {
        let g = Granularity::CacheLine;
        let m = run(
            g,
            256,
            &[store(1, 0, 5, 8, false), store(1, 0, 0, 8, false)],
        );
        let un = m.uncertain();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].candidates.len(), 2);
        // The image with line 0 zero equals the all-zero start, whichever
        // version holds the zeros.
        let mut fresh = Model::new(LINE, PAGE);
        fresh.apply(&map(g, 256)).unwrap();
        assert_eq!(m.version(&un[0], 0).data[0], 5);
        assert_eq!(m.version(&un[0], 1).data[0], 0);
        assert_eq!(m.fingerprint(&un, &[1]), fresh.fingerprint(&[], &[]));
        assert_ne!(m.fingerprint(&un, &[0]), m.fingerprint(&un, &[1]));
    }

    #[test]
    fn a_second_mapping_of_the_file_joins_it_and_outside_changes_are_durable() {
        let mut m = run(Granularity::CacheLine, 256, &[store(1, 0, 5, 8, false)]);
        let mut initial = vec![0u8; 256];
        initial[0..8].fill(5);
        initial[128] = 1; // changed by write(2) meanwhile
        m.apply(&Record::Map {
            thread: 1,
            site: 0,
            call: Call::MapFile,
            map: 2,
            granularity: Granularity::CacheLine,
            file_offset: 0,
            dev: 1,
            ino: 1,
            path: "f".into(),
            initial,
        })
        .unwrap();
        assert_eq!(m.files.len(), 1);
        assert_eq!(line_values(&m, 0), [0, 5]);
        assert_eq!(line_values(&m, 2), [1]);
    }

    #[test]
    fn bad_records_are_errors() {
        let mut m = Model::new(LINE, PAGE);
        assert!(m.apply(&store(1, 0, 1, 1, false)).is_err());
        m.apply(&map(Granularity::CacheLine, 64)).unwrap();
        assert!(m.apply(&store(1, 60, 1, 8, false)).is_err());
    }

    #[test]
    fn events_are_described_with_call_range_and_site() {
        let mut m = Model::new(LINE, PAGE);
        m.apply(&Record::Site {
            id: 3,
            text: "append (log.c:40)".into(),
        })
        .unwrap();
        m.apply(&map(Granularity::CacheLine, 256)).unwrap();
        m.apply(&Record::Store {
            thread: 1,
            site: 3,
            call: Call::MemcpyToPmem,
            map: 1,
            offset: 64,
            written_back: true,
            data: Data::Fill(1, 16),
        })
        .unwrap();
        assert_eq!(
            m.describe_event(2),
            "#2 memcpy_to_pmem [0x40, 0x50) of f [thread 1] at append (log.c:40)"
        );
    }
}
