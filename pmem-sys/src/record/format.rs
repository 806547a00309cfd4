//! The trace file: a versioned, self-delimiting binary log.
//!
//! See the [module documentation](super) for the layout. [`Writer`]
//! appends records; [`Reader`] reads them back and stops cleanly at a
//! record cut short (a workload killed mid-write leaves one).

use crate::granularity::Granularity;
use std::io::{self, Read, Write};

/// The first eight bytes of every trace.
pub const MAGIC: &[u8; 8] = b"PMSYSTRC";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// The call a recorded event comes from, as a stable one-byte code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Call {
    /// A store found by comparing the mapping with its shadow: made through
    /// a plain pointer, attributed to the recorded call that follows it.
    Direct = 0,
    /// `memcpy_to_pmem`.
    MemcpyToPmem = 1,
    /// `pmem_sys_memmove` / `memmove_to_pmem`.
    MemmoveToPmem = 2,
    /// `pmem_sys_memset` / `memset_pmem` / `clear_pmem`.
    MemsetPmem = 3,
    /// `pmem_sys_memcpy_to_pmem_checked`.
    MemcpyToPmemChecked = 4,
    /// `memset_pmem_checked`.
    MemsetPmemChecked = 5,
    /// `arch_wb_cache_pmem`.
    ArchWbCachePmem = 6,
    /// `arch_invalidate_pmem`.
    ArchInvalidatePmem = 7,
    /// `wmb_pmem` / `pmem_sys_drain`.
    WmbPmem = 8,
    /// `pmem_sys_persist`.
    Persist = 9,
    /// `msync(2)` issued by the library (`pmem_msync`, `wmb_pmem` on a
    /// page-granular mapping, an unmap).
    Msync = 10,
    /// `memremap_pmem`.
    Memremap = 11,
    /// `pmem_sys_map_file`.
    MapFile = 12,
    /// `memunmap_pmem`.
    Memunmap = 13,
    /// `pmem_sys_memcpy_flags`.
    MemcpyFlags = 14,
    /// `pmem_sys_memmove_flags`.
    MemmoveFlags = 15,
    /// `pmem_sys_memset_flags`.
    MemsetFlags = 16,
    /// `pmem_sys_deep_flush`.
    DeepFlush = 17,
    /// `pmem_sys_deep_persist`.
    DeepPersist = 18,
    /// The end of recording (`pmem_sys_record_stop` or process exit).
    End = 19,
    /// A shared file mapping the program made itself, recorded from the
    /// first call that used it (libpmemobj's pool).
    Adopt = 20,
}

impl Call {
    const ALL: [Call; 21] = [
        Call::Direct,
        Call::MemcpyToPmem,
        Call::MemmoveToPmem,
        Call::MemsetPmem,
        Call::MemcpyToPmemChecked,
        Call::MemsetPmemChecked,
        Call::ArchWbCachePmem,
        Call::ArchInvalidatePmem,
        Call::WmbPmem,
        Call::Persist,
        Call::Msync,
        Call::Memremap,
        Call::MapFile,
        Call::Memunmap,
        Call::MemcpyFlags,
        Call::MemmoveFlags,
        Call::MemsetFlags,
        Call::DeepFlush,
        Call::DeepPersist,
        Call::End,
        Call::Adopt,
    ];

    /// The code's call, if it is one.
    pub fn from_code(c: u8) -> Option<Call> {
        Self::ALL.get(c as usize).copied()
    }

    /// The name a report shows.
    pub fn name(self) -> &'static str {
        match self {
            Call::Direct => "direct store",
            Call::MemcpyToPmem => "memcpy_to_pmem",
            Call::MemmoveToPmem => "memmove_to_pmem",
            Call::MemsetPmem => "memset_pmem",
            Call::MemcpyToPmemChecked => "memcpy_to_pmem_checked",
            Call::MemsetPmemChecked => "memset_pmem_checked",
            Call::ArchWbCachePmem => "arch_wb_cache_pmem",
            Call::ArchInvalidatePmem => "arch_invalidate_pmem",
            Call::WmbPmem => "wmb_pmem",
            Call::Persist => "persist",
            Call::Msync => "msync",
            Call::Memremap => "memremap_pmem",
            Call::MapFile => "map_file",
            Call::Memunmap => "memunmap_pmem",
            Call::MemcpyFlags => "memcpy_flags",
            Call::MemmoveFlags => "memmove_flags",
            Call::MemsetFlags => "memset_flags",
            Call::DeepFlush => "deep_flush",
            Call::DeepPersist => "deep_persist",
            Call::End => "end of recording",
            Call::Adopt => "mapping found",
        }
    }
}

/// What a store wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` copies of one byte (a memset).
    Fill(u8, u64),
}

impl Data {
    /// The number of bytes stored.
    pub fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Fill(_, n) => *n,
        }
    }

    /// True for an empty store.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the stored bytes into `out` (which is `len()` long).
    pub fn apply(&self, out: &mut [u8]) {
        match self {
            Data::Bytes(b) => out.copy_from_slice(b),
            Data::Fill(c, _) => out.fill(*c),
        }
    }
}

/// One recorded event. `thread` numbers the recording threads from 1 in
/// the order they first recorded; `site` is 0 or the id of a
/// [`Record::Site`] seen earlier; `map` the id of a [`Record::Map`] seen
/// earlier; offsets are relative to the start of that mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Defines a site id: the text a report shows for a calling site.
    Site {
        /// The id later records refer to (from 1).
        id: u32,
        /// `function (file:line)`, or what could be had.
        text: String,
    },
    /// A mapping was made; `initial` is its content at that moment.
    Map {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The call that mapped.
        call: Call,
        /// Id of this mapping for later records.
        map: u32,
        /// Its durability rules.
        granularity: Granularity,
        /// Offset in the file of the first mapped byte.
        file_offset: u64,
        /// Device and inode of the file (to join mappings of one file).
        dev: u64,
        /// Inode number.
        ino: u64,
        /// The file's path as the process saw it (may be empty).
        path: String,
        /// The mapped bytes at the time of mapping.
        initial: Vec<u8>,
    },
    /// A mapping went away.
    Unmap {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The mapping.
        map: u32,
    },
    /// Bytes were stored.
    Store {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The call that stored (`Direct` for a store found by the shadow).
        call: Call,
        /// The mapping.
        map: u32,
        /// Offset of the first byte stored.
        offset: u64,
        /// True when the call writes the stored lines back (or uses
        /// non-temporal stores): durable at this thread's next fence. False
        /// for ordinary stores left in the cache.
        written_back: bool,
        /// What was stored.
        data: Data,
    },
    /// Lines were written back (not fenced).
    WriteBack {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The call.
        call: Call,
        /// The mapping.
        map: u32,
        /// First byte.
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// A fence: this thread's earlier write-backs are durable.
    Fence {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The call.
        call: Call,
    },
    /// `msync` returned success for the range: it is durable.
    Msync {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The mapping.
        map: u32,
        /// First byte (page aligned).
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// Write back the range and fence (or msync a page-granular range).
    Persist {
        /// Recording thread.
        thread: u32,
        /// Calling site.
        site: u32,
        /// The call.
        call: Call,
        /// The mapping.
        map: u32,
        /// First byte.
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// Recording ended.
    End {
        /// Recording thread.
        thread: u32,
    },
}

const T_SITE: u8 = 1;
const T_MAP: u8 = 2;
const T_UNMAP: u8 = 3;
const T_STORE: u8 = 4;
const T_WRITE_BACK: u8 = 5;
const T_FENCE: u8 = 6;
const T_MSYNC: u8 = 7;
const T_PERSIST: u8 = 8;
const T_END: u8 = 9;

/// The header every trace starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// The cache-line size the recorder assumed.
    pub line: u32,
    /// The page size of the recording machine.
    pub page: u32,
    /// The recording process.
    pub pid: u32,
}

/// Appends records to a byte sink.
pub struct Writer<W: Write> {
    out: W,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the header and returns the writer.
    pub fn new(mut out: W, line: u32, page: u32, pid: u32) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        for v in [VERSION, line, page, pid] {
            out.write_all(&v.to_le_bytes())?;
        }
        Ok(Writer { out, written: 24 })
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.written += b.len() as u64;
        self.out.write_all(b)
    }
    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }
    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends one record.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        match r {
            Record::Site { id, text } => {
                self.u8(T_SITE)?;
                self.u32(*id)?;
                self.u32(text.len() as u32)?;
                self.bytes(text.as_bytes())
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
                self.map_head(
                    *thread,
                    *site,
                    *call,
                    *map,
                    *granularity,
                    *file_offset,
                    *dev,
                    *ino,
                    path,
                    initial.len() as u64,
                )?;
                self.bytes(initial)
            }
            Record::Unmap { thread, site, map } => {
                self.u8(T_UNMAP)?;
                self.u32(*thread)?;
                self.u32(*site)?;
                self.u32(*map)
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
                self.store_head(
                    *thread,
                    *site,
                    *call,
                    *map,
                    *offset,
                    *written_back,
                    data.len(),
                    match data {
                        Data::Fill(c, _) => Some(*c),
                        Data::Bytes(_) => None,
                    },
                )?;
                match data {
                    Data::Bytes(b) => self.bytes(b),
                    Data::Fill(..) => Ok(()),
                }
            }
            Record::WriteBack {
                thread,
                site,
                call,
                map,
                offset,
                len,
            } => self.range(T_WRITE_BACK, *thread, *site, *call, *map, *offset, *len),
            Record::Persist {
                thread,
                site,
                call,
                map,
                offset,
                len,
            } => self.range(T_PERSIST, *thread, *site, *call, *map, *offset, *len),
            Record::Msync {
                thread,
                site,
                map,
                offset,
                len,
            } => self.range(T_MSYNC, *thread, *site, Call::Msync, *map, *offset, *len),
            Record::Fence { thread, site, call } => {
                self.u8(T_FENCE)?;
                self.u32(*thread)?;
                self.u32(*site)?;
                self.u8(*call as u8)
            }
            Record::End { thread } => {
                self.u8(T_END)?;
                self.u32(*thread)
            }
        }
    }

    /// The head of a map record; the caller writes `len` content bytes
    /// next (so the recorder can stream them from the mapping).
    #[allow(clippy::too_many_arguments)]
    pub fn map_head(
        &mut self,
        thread: u32,
        site: u32,
        call: Call,
        map: u32,
        granularity: Granularity,
        file_offset: u64,
        dev: u64,
        ino: u64,
        path: &str,
        len: u64,
    ) -> io::Result<()> {
        self.u8(T_MAP)?;
        self.u32(thread)?;
        self.u32(site)?;
        self.u8(call as u8)?;
        self.u32(map)?;
        self.u8(granularity as i32 as u8)?;
        self.u64(file_offset)?;
        self.u64(dev)?;
        self.u64(ino)?;
        self.u32(path.len() as u32)?;
        self.bytes(path.as_bytes())?;
        self.u64(len)
    }

    /// The head of a store record; without `fill`, the caller writes `len`
    /// data bytes next with [`Writer::raw`].
    #[allow(clippy::too_many_arguments)]
    pub fn store_head(
        &mut self,
        thread: u32,
        site: u32,
        call: Call,
        map: u32,
        offset: u64,
        written_back: bool,
        len: u64,
        fill: Option<u8>,
    ) -> io::Result<()> {
        self.u8(T_STORE)?;
        self.u32(thread)?;
        self.u32(site)?;
        self.u8(call as u8)?;
        self.u32(map)?;
        self.u64(offset)?;
        self.u64(len)?;
        let flags = u8::from(written_back) | if fill.is_some() { 2 } else { 0 };
        self.u8(flags)?;
        if let Some(c) = fill {
            self.u8(c)?;
        }
        Ok(())
    }

    /// Raw bytes following a head.
    pub fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.bytes(b)
    }

    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        tag: u8,
        thread: u32,
        site: u32,
        call: Call,
        map: u32,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.u8(tag)?;
        self.u32(thread)?;
        self.u32(site)?;
        if tag != T_MSYNC {
            self.u8(call as u8)?;
        }
        self.u32(map)?;
        self.u64(offset)?;
        self.u64(len)
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The sink.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Why a trace could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// An I/O error of the source.
    Io(io::Error),
    /// Not a trace, or a version this code does not read.
    BadHeader(String),
    /// A record with an unknown tag or an impossible field, at this byte.
    Corrupt(u64, String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "reading the trace: {e}"),
            ReadError::BadHeader(w) => write!(f, "not a pmem-sys trace: {w}"),
            ReadError::Corrupt(at, w) => write!(f, "corrupt trace at byte {at}: {w}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads records back.
pub struct Reader<R: Read> {
    src: R,
    /// The trace's header.
    pub header: Header,
    /// Bytes consumed so far.
    pub pos: u64,
    /// True when the last record was cut short (the writer was killed).
    pub truncated: bool,
}

/// The largest single allocation a record may ask for (guards corrupt
/// lengths): 1 TiB.
const MAX_LEN: u64 = 1 << 40;

enum Short {
    Eof,
    Err(ReadError),
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(mut src: R) -> Result<Self, ReadError> {
        let mut h = [0u8; 24];
        src.read_exact(&mut h).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ReadError::BadHeader("shorter than the 24-byte header".into())
            } else {
                ReadError::Io(e)
            }
        })?;
        if &h[..8] != MAGIC {
            return Err(ReadError::BadHeader("wrong magic".into()));
        }
        let w = |i: usize| u32::from_le_bytes(h[8 + 4 * i..12 + 4 * i].try_into().unwrap());
        let header = Header {
            version: w(0),
            line: w(1),
            page: w(2),
            pid: w(3),
        };
        if header.version != VERSION {
            return Err(ReadError::BadHeader(format!(
                "format version {} (this reader reads {VERSION})",
                header.version
            )));
        }
        Ok(Reader {
            src,
            header,
            pos: 24,
            truncated: false,
        })
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Short> {
        match self.src.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Short::Eof),
            Err(e) => Err(Short::Err(ReadError::Io(e))),
        }
    }
    fn u8(&mut self) -> Result<u8, Short> {
        let mut b = [0; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }
    fn u32(&mut self) -> Result<u32, Short> {
        let mut b = [0; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, Short> {
        let mut b = [0; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn vec(&mut self, n: u64, at: u64) -> Result<Vec<u8>, Short> {
        if n > MAX_LEN {
            return Err(Short::Err(ReadError::Corrupt(at, format!("length {n}"))));
        }
        let mut v = vec![0; n as usize];
        self.fill(&mut v)?;
        Ok(v)
    }
    fn call(&mut self, at: u64) -> Result<Call, Short> {
        let c = self.u8()?;
        Call::from_code(c)
            .ok_or_else(|| Short::Err(ReadError::Corrupt(at, format!("unknown call code {c}"))))
    }

    fn record(&mut self) -> Result<Option<Record>, Short> {
        let at = self.pos;
        let mut tag = [0u8; 1];
        match self.src.read(&mut tag) {
            Ok(0) => return Ok(None),
            Ok(_) => self.pos += 1,
            Err(e) => return Err(Short::Err(ReadError::Io(e))),
        }
        let r = match tag[0] {
            T_SITE => {
                let id = self.u32()?;
                let n = self.u32()?;
                let b = self.vec(n as u64, at)?;
                Record::Site {
                    id,
                    text: String::from_utf8_lossy(&b).into_owned(),
                }
            }
            T_MAP => {
                let thread = self.u32()?;
                let site = self.u32()?;
                let call = self.call(at)?;
                let map = self.u32()?;
                let g = self.u8()?;
                let granularity = match g {
                    0 => Granularity::Byte,
                    1 => Granularity::CacheLine,
                    2 => Granularity::Page,
                    _ => {
                        return Err(Short::Err(ReadError::Corrupt(
                            at,
                            format!("granularity {g}"),
                        )));
                    }
                };
                let file_offset = self.u64()?;
                let dev = self.u64()?;
                let ino = self.u64()?;
                let n = self.u32()?;
                let path = String::from_utf8_lossy(&self.vec(n as u64, at)?).into_owned();
                let len = self.u64()?;
                let initial = self.vec(len, at)?;
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
                }
            }
            T_UNMAP => Record::Unmap {
                thread: self.u32()?,
                site: self.u32()?,
                map: self.u32()?,
            },
            T_STORE => {
                let thread = self.u32()?;
                let site = self.u32()?;
                let call = self.call(at)?;
                let map = self.u32()?;
                let offset = self.u64()?;
                let len = self.u64()?;
                let flags = self.u8()?;
                let data = if flags & 2 != 0 {
                    Data::Fill(self.u8()?, len)
                } else {
                    Data::Bytes(self.vec(len, at)?)
                };
                Record::Store {
                    thread,
                    site,
                    call,
                    map,
                    offset,
                    written_back: flags & 1 != 0,
                    data,
                }
            }
            T_WRITE_BACK | T_PERSIST => {
                let thread = self.u32()?;
                let site = self.u32()?;
                let call = self.call(at)?;
                let map = self.u32()?;
                let offset = self.u64()?;
                let len = self.u64()?;
                if tag[0] == T_PERSIST {
                    Record::Persist {
                        thread,
                        site,
                        call,
                        map,
                        offset,
                        len,
                    }
                } else {
                    Record::WriteBack {
                        thread,
                        site,
                        call,
                        map,
                        offset,
                        len,
                    }
                }
            }
            T_MSYNC => Record::Msync {
                thread: self.u32()?,
                site: self.u32()?,
                map: self.u32()?,
                offset: self.u64()?,
                len: self.u64()?,
            },
            T_FENCE => Record::Fence {
                thread: self.u32()?,
                site: self.u32()?,
                call: self.call(at)?,
            },
            T_END => Record::End {
                thread: self.u32()?,
            },
            t => {
                return Err(Short::Err(ReadError::Corrupt(
                    at,
                    format!("unknown record tag {t}"),
                )));
            }
        };
        Ok(Some(r))
    }

    /// The next record; `Ok(None)` at the end (or at a record cut short,
    /// which sets [`Reader::truncated`]).
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if self.truncated {
            return Ok(None);
        }
        match self.record() {
            Ok(r) => Ok(r),
            Err(Short::Eof) => {
                self.truncated = true;
                Ok(None)
            }
            Err(Short::Err(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Site {
                id: 1,
                text: "main (log.c:12)".into(),
            },
            Record::Map {
                thread: 1,
                site: 1,
                call: Call::MapFile,
                map: 1,
                granularity: Granularity::CacheLine,
                file_offset: 4096,
                dev: 7,
                ino: 99,
                path: "/tmp/x".into(),
                initial: vec![1, 2, 3, 4],
            },
            Record::Store {
                thread: 1,
                site: 1,
                call: Call::MemcpyToPmem,
                map: 1,
                offset: 1,
                written_back: true,
                data: Data::Bytes(vec![9, 9]),
            },
            Record::Store {
                thread: 2,
                site: 0,
                call: Call::MemsetPmem,
                map: 1,
                offset: 0,
                written_back: false,
                data: Data::Fill(0xab, 4),
            },
            Record::WriteBack {
                thread: 1,
                site: 1,
                call: Call::ArchWbCachePmem,
                map: 1,
                offset: 0,
                len: 4,
            },
            Record::Fence {
                thread: 1,
                site: 0,
                call: Call::WmbPmem,
            },
            Record::Msync {
                thread: 1,
                site: 0,
                map: 1,
                offset: 0,
                len: 4096,
            },
            Record::Persist {
                thread: 1,
                site: 1,
                call: Call::Persist,
                map: 1,
                offset: 0,
                len: 2,
            },
            Record::Unmap {
                thread: 1,
                site: 1,
                map: 1,
            },
            Record::End { thread: 1 },
        ]
    }

    fn encode(rs: &[Record]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), 64, 4096, 42).unwrap();
        for r in rs {
            w.write(r).unwrap();
        }
        let n = w.written;
        let v = w.into_inner();
        assert_eq!(n, v.len() as u64);
        v
    }

    fn decode(b: &[u8]) -> (Vec<Record>, bool) {
        let mut r = Reader::new(b).unwrap();
        assert_eq!(
            r.header,
            Header {
                version: VERSION,
                line: 64,
                page: 4096,
                pid: 42
            }
        );
        let mut out = Vec::new();
        while let Some(x) = r.next_record().unwrap() {
            out.push(x);
        }
        (out, r.truncated)
    }

    #[test]
    fn every_record_round_trips() {
        let rs = sample();
        let (back, truncated) = decode(&encode(&rs));
        assert_eq!(back, rs);
        assert!(!truncated);
    }

    #[test]
    fn a_record_cut_short_ends_the_trace_cleanly() {
        let rs = sample();
        let full = encode(&rs);
        // Every cut point: the records before it come back, and a cut
        // inside a record is reported as truncation.
        let whole = encode(&rs[..3]).len();
        for cut in 24..full.len() {
            let (back, truncated) = decode(&full[..cut]);
            assert_eq!(back[..], rs[..back.len()]);
            if cut == whole {
                assert_eq!(back.len(), 3);
                assert!(!truncated);
            }
        }
        let (back, truncated) = decode(&full[..whole + 3]);
        assert_eq!(back.len(), 3);
        assert!(truncated);
    }

    #[test]
    fn bad_headers_and_tags_are_refused() {
        assert!(matches!(
            Reader::new(&b"PMSYSTR"[..]),
            Err(ReadError::BadHeader(_))
        ));
        let mut b = encode(&[]);
        b[8] = 2;
        assert!(
            matches!(Reader::new(&b[..]), Err(ReadError::BadHeader(m)) if m.contains("version 2"))
        );
        let mut b = encode(&[]);
        b.push(77);
        let mut r = Reader::new(&b[..]).unwrap();
        assert!(matches!(r.next_record(), Err(ReadError::Corrupt(24, m)) if m.contains("tag 77")));
    }
}
