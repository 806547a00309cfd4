'use strict';
// Node.js binding of libpmem_sys, loaded at run time with koffi.
//
// Addresses cross the boundary as uintptr_t, so JavaScript holds them as
// plain Numbers and can add offsets to them; on x86_64 and aarch64 a
// pointer and a uintptr_t are passed the same way, and user-space
// addresses (47 or 48 bits) are exact in a Number.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { fileURLToPath } = require('node:url');
const koffi = require('koffi');

const SONAME = 'libpmem_sys.so.0';

/**
 * Where the library is loaded from: PMEM_SYS_LIB, else the libdir that
 * pkg-config reports for pmem-sys, else the dynamic loader's own search
 * (LD_LIBRARY_PATH, the ld.so cache) for the SONAME.
 */
function resolveLibrary(env = process.env) {
  if (env.PMEM_SYS_LIB) {
    return { path: env.PMEM_SYS_LIB, source: 'PMEM_SYS_LIB' };
  }
  let libdir = '';
  try {
    libdir = execFileSync('pkg-config', ['--variable=libdir', 'pmem-sys'], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    // No pkg-config, or no pmem-sys.pc on its path: fall through.
  }
  if (libdir) {
    const candidate = path.join(libdir, SONAME);
    if (fs.existsSync(candidate)) {
      return { path: candidate, source: 'pkg-config' };
    }
  }
  return { path: SONAME, source: 'default search' };
}

const library = resolveLibrary();
let lib;
try {
  lib = koffi.load(library.path);
} catch (e) {
  const err = new Error(
    `pmem-sys: cannot load ${library.path} (found by ${library.source}): ${e.message}; ` +
      'set PMEM_SYS_LIB to the library file, or PKG_CONFIG_PATH so that `pkg-config pmem-sys` finds it',
  );
  err.code = 'ERR_PMEM_SYS_LOAD';
  err.cause = e;
  throw err;
}

const c = {
  map_file: lib.func('pmem_sys_map_file', 'uintptr_t', ['str', 'size_t', 'uint', 'uint32_t', koffi.out(koffi.pointer('size_t'))]),
  memremap: lib.func('memremap_pmem', 'uintptr_t', ['int', 'uint64_t', 'size_t']),
  memunmap: lib.func('memunmap_pmem', 'int', ['uintptr_t']),
  memcpy_to_pmem: lib.func('memcpy_to_pmem', 'void', ['uintptr_t', 'const void *', 'size_t']),
  // The same function taking the destination as a typed array: koffi
  // passes the array's own memory, which for a view of a mapping is the
  // mapping itself.
  memcpy_to_view: lib.func('memcpy_to_pmem', 'void', ['void *', 'const void *', 'size_t']),
  memmove: lib.func('pmem_sys_memmove', 'void', ['uintptr_t', 'uintptr_t', 'size_t']),
  memmove_view: lib.func('pmem_sys_memmove', 'void', ['void *', 'const void *', 'size_t']),
  memcpy_from_pmem: lib.func('memcpy_from_pmem', 'int', ['void *', 'uintptr_t', 'size_t']),
  // The checked copy: -1 with errno EIO on a bus error instead of SIGBUS.
  memcpy_to_pmem_checked: lib.func('pmem_sys_memcpy_to_pmem_checked', 'int', ['uintptr_t', 'const void *', 'size_t']),
  persist: lib.func('pmem_sys_persist', 'int', ['uintptr_t', 'size_t']),
  // Per-call flags and the deep flush (resolved lazily: see flagCalls()).
  drain: lib.func('pmem_sys_drain', 'int', []),
  wmb_pmem: lib.func('wmb_pmem', 'void', []),
  granularity: lib.func('pmem_sys_granularity', 'int', ['uintptr_t', 'size_t']),
  reason: lib.func('pmem_sys_mapping_reason', 'const char *', ['uintptr_t']),
  errormsg: lib.func('pmem_sys_errormsg', 'const char *', []),
  arch_has_pmem_api: lib.func('arch_has_pmem_api', 'bool', []),
  arch_has_wmb_pmem: lib.func('arch_has_wmb_pmem', 'bool', []),
  impl: lib.func('pmem_sys_impl', 'const char *', []),
  version: lib.func('pmem_sys_version', 'const char *', []),
};

// The per-call store flags and the deep flush, declared on first use so
// that a library without them still loads for everything else.
let flagFns = null;
function flagCalls() {
  if (flagFns === null) {
    flagFns = {
      memcpy: lib.func('pmem_sys_memcpy_flags', 'int', ['uintptr_t', 'const void *', 'size_t', 'uint']),
      memmove: lib.func('pmem_sys_memmove_flags', 'int', ['uintptr_t', 'uintptr_t', 'size_t', 'uint']),
      memset: lib.func('pmem_sys_memset_flags', 'int', ['uintptr_t', 'int', 'size_t', 'uint']),
      deep_flush: lib.func('pmem_sys_deep_flush', 'int', ['uintptr_t', 'size_t']),
      deep_persist: lib.func('pmem_sys_deep_persist', 'int', ['uintptr_t', 'size_t']),
    };
  }
  return flagFns;
}

// Store flags: the values of PMDK's PMEM_F_MEM_* (pmem.h's PMEM_SYS_F_*).
const F_NODRAIN = 1;
const F_NONTEMPORAL = 2;
const F_TEMPORAL = 4;
const F_WC = 8;
const F_WB = 16;
const F_NOFLUSH = 32;
const F_ALL = F_NODRAIN | F_NONTEMPORAL | F_TEMPORAL | F_WC | F_WB | F_NOFLUSH;

function checkFlags(call, flags) {
  if (!Number.isSafeInteger(flags) || flags < 0 || flags > 0xffffffff) {
    throw argError(RangeError, 'ERR_OUT_OF_RANGE', `${call}: flags ${String(flags)}: not an integer from 0 to 4294967295`);
  }
  if ((flags & ~F_ALL) !== 0 || flags > F_ALL) {
    throw new PmemError(call, os.constants.errno.EINVAL, `${call}: flags 0x${flags.toString(16)}: unknown bits`);
  }
}

const FILE_CREATE = 1;
const FILE_EXCL = 2;
const FILE_SPARSE = 4;
const FILE_TMPFILE = 8;
const GRANULARITY_NAMES = ['byte', 'cache_line', 'page'];

const errnoNames = new Map(Object.entries(os.constants.errno).map(([name, value]) => [value, name]));

/** An error of the library or of an argument check, with `code` ('ENOENT'...). */
class PmemError extends Error {
  constructor(call, errno, message) {
    super(message);
    this.name = 'PmemError';
    this.code = errnoNames.get(errno) ?? `E${errno}`;
    /** The positive errno value, as in os.constants.errno. */
    this.errno = errno;
    /** The library call ('pmem_sys_map_file') or method ('Mapping.write'). */
    this.syscall = call;
  }
}

// Must run right after the failing call: koffi keeps the errno of the
// last call made, and the message is the calling thread's last one.
function libraryError(call) {
  const errno = koffi.errno() || os.constants.errno.EIO;
  const message = c.errormsg() || `${call}: ${os.constants.errno[errno] ?? errno}`;
  return new PmemError(call, errno, message);
}

function argError(Kind, code, message) {
  const err = new Kind(message);
  err.code = code;
  return err;
}

// koffi would wrap a too-large value into the C type (flags 2**32 + 1
// would become FILE_CREATE), so the bounds are checked here.
function checkSize(call, name, value, max = Number.MAX_SAFE_INTEGER) {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw argError(RangeError, 'ERR_OUT_OF_RANGE', `${call}: ${name} ${String(value)}: not an integer from 0 to ${max}`);
  }
}

function toBytes(call, data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `${call}: data must be a string, Buffer, TypedArray, DataView or ArrayBuffer`);
}

function checkAddress(call, addr) {
  if (!Number.isSafeInteger(addr)) {
    // Not reachable on x86_64 or aarch64; refuse rather than round.
    c.memunmap(addr);
    throw new PmemError(call, os.constants.errno.EOVERFLOW, `${call}: address ${addr} does not fit a JavaScript Number`);
  }
}

// A buffer handed out is memory the JavaScript engine may touch at any
// time, so a mapping whose buffer was taken is unmapped only once that
// ArrayBuffer (and every view of it) has been garbage-collected. An
// unmap failure there has nobody to report to; the library keeps the
// reason in pmem_sys_errormsg().
const deferredUnmaps = new FinalizationRegistry((addr) => {
  c.memunmap(addr);
});

const INTERNAL = Symbol('pmem-sys internal');

/** A range of a file or device-DAX node mapped by the library. */
class Mapping {
  #addr;
  #size;
  #buffer = null;
  #closed = false;

  constructor(token, addr, size) {
    if (token !== INTERNAL) {
      throw argError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Mapping: use mapFile() or memremap()');
    }
    this.#addr = addr;
    this.#size = size;
  }

  /** Length in bytes, as asked for. */
  get size() {
    return this.#size;
  }

  /** The start address, as a Number. */
  get address() {
    return this.#addr;
  }

  get closed() {
    return this.#closed;
  }

  /**
   * The mapped memory as an ArrayBuffer, without a copy: stores through it
   * are stores to the file (make them durable with persist()). Always the
   * same ArrayBuffer. It stays valid after close(): the unmap then waits
   * until it is garbage-collected.
   */
  get buffer() {
    this.#check('Mapping.buffer');
    if (this.#buffer === null) {
      this.#buffer = koffi.view(this.#addr, this.#size);
    }
    return this.#buffer;
  }

  /**
   * Copy data to offset with the checked copy
   * (pmem_sys_memcpy_to_pmem_checked): written back or streamed, not yet
   * ordered; follow with drain() (or wmbPmem()), or persist() the range.
   * data may be a view of this mapping's buffer overlapping the
   * destination. Returns the number of bytes written. A bus error (a page
   * truncated under the mapping, say) throws with code 'EIO' and the
   * process goes on; the bytes before the fault are written.
   */
  write(offset, data) {
    let bytes = toBytes('Mapping.write', data);
    this.#range('Mapping.write', offset, bytes.length);
    if (bytes.length === 0) return 0;
    if (this.#buffer !== null && bytes.buffer === this.#buffer) {
      // A view of this very mapping: the ranges may overlap, which the
      // checked copy does not allow. Read the source out with the
      // fault-safe read first, then write that copy.
      const copy = Buffer.alloc(bytes.length);
      if (c.memcpy_from_pmem(copy, this.#addr + bytes.byteOffset, bytes.length) !== 0) {
        throw libraryError('memcpy_from_pmem');
      }
      bytes = copy;
    }
    if (c.memcpy_to_pmem_checked(this.#addr + offset, bytes, bytes.length) !== 0) {
      throw libraryError('pmem_sys_memcpy_to_pmem_checked');
    }
    return bytes.length;
  }

  /**
   * Copy length bytes at offset into a new Buffer with the fault-safe
   * memcpy_from_pmem. A bus error throws with code 'EIO' (never stale
   * bytes) and the process goes on.
   */
  read(offset, length) {
    this.#range('Mapping.read', offset, length);
    const out = Buffer.alloc(length);
    if (length > 0 && c.memcpy_from_pmem(out, this.#addr + offset, length) !== 0) {
      throw libraryError('memcpy_from_pmem');
    }
    return out;
  }

  /**
   * Copy data to offset with pmem_sys_memcpy_flags: the flags (F_*) choose
   * non-temporal or temporal stores and whether the call flushes and
   * drains (by default both: durable on return). A view of this mapping's
   * buffer may overlap the destination (pmem_sys_memmove_flags then).
   * Unknown flag bits throw 'EINVAL' and store nothing. Not fault-safe: a
   * bus error kills the process (use write()). Returns the count.
   */
  writeFlags(offset, data, flags = 0) {
    const call = 'Mapping.writeFlags';
    const bytes = toBytes(call, data);
    this.#range(call, offset, bytes.length);
    checkFlags(call, flags);
    if (bytes.length === 0) return 0;
    const f = flagCalls();
    if (this.#buffer !== null && bytes.buffer === this.#buffer) {
      if (f.memmove(this.#addr + offset, this.#addr + bytes.byteOffset, bytes.length, flags) !== 0) {
        throw libraryError('pmem_sys_memmove_flags');
      }
    } else if (f.memcpy(this.#addr + offset, bytes, bytes.length, flags) !== 0) {
      throw libraryError('pmem_sys_memcpy_flags');
    }
    return bytes.length;
  }

  /** Move length bytes inside the mapping (overlap allowed), pmem_sys_memmove_flags. Not fault-safe. */
  move(dstOffset, srcOffset, length, flags = 0) {
    const call = 'Mapping.move';
    this.#range(call, dstOffset, length);
    this.#range(call, srcOffset, length);
    checkFlags(call, flags);
    if (length === 0) return;
    if (flagCalls().memmove(this.#addr + dstOffset, this.#addr + srcOffset, length, flags) !== 0) {
      throw libraryError('pmem_sys_memmove_flags');
    }
  }

  /** Fill length bytes at offset with value (0-255), pmem_sys_memset_flags. Not fault-safe. */
  memset(offset, value, length, flags = 0) {
    const call = 'Mapping.memset';
    this.#range(call, offset, length);
    checkSize(call, 'value', value, 255);
    checkFlags(call, flags);
    if (length === 0) return;
    if (flagCalls().memset(this.#addr + offset, value, length, flags) !== 0) {
      throw libraryError('pmem_sys_memset_flags');
    }
  }

  /**
   * pmem_sys_deep_flush: durable past the memory controller: write back and
   * fence, then the region's deep_flush on device-DAX, else msync. A system
   * call: for rare points such as the end of a checkpoint.
   */
  deepFlush(offset = 0, length = this.#size - offset) {
    this.#range('Mapping.deepFlush', offset, length);
    if (flagCalls().deep_flush(this.#addr + offset, length) !== 0) throw libraryError('pmem_sys_deep_flush');
  }

  /** pmem_sys_deep_persist: deepFlush that also throws an msync failure an earlier wmbPmem() recorded. */
  deepPersist(offset = 0, length = this.#size - offset) {
    this.#range('Mapping.deepPersist', offset, length);
    if (flagCalls().deep_persist(this.#addr + offset, length) !== 0) throw libraryError('pmem_sys_deep_persist');
  }

  /** Make [offset, offset + length) durable now; the whole mapping by default. */
  persist(offset = 0, length = this.#size - offset) {
    this.#range('Mapping.persist', offset, length);
    if (c.persist(this.#addr + offset, length) !== 0) throw libraryError('pmem_sys_persist');
  }

  /** 'byte', 'cache_line' or 'page': what a store needs to become durable. */
  granularity() {
    this.#check('Mapping.granularity');
    const g = c.granularity(this.#addr, this.#size);
    if (g < 0) throw libraryError('pmem_sys_granularity');
    return GRANULARITY_NAMES[g] ?? `unknown(${g})`;
  }

  /** Why the mapping has its granularity, in one sentence. */
  reason() {
    this.#check('Mapping.reason');
    const r = c.reason(this.#addr);
    if (r === null) throw libraryError('pmem_sys_mapping_reason');
    return r;
  }

  /**
   * Close the mapping: later calls throw (code 'EBADF'). Unmaps now, or,
   * if `buffer` was taken, once that ArrayBuffer is garbage-collected.
   * Returns true when it unmapped now.
   */
  close() {
    this.#check('Mapping.close');
    this.#closed = true;
    if (this.#buffer !== null) {
      deferredUnmaps.register(this.#buffer, this.#addr);
      this.#buffer = null;
      return false;
    }
    if (c.memunmap(this.#addr) !== 0) throw libraryError('memunmap_pmem');
    return true;
  }

  #check(call) {
    if (this.#closed) {
      throw new PmemError(call, os.constants.errno.EBADF, `${call}: the mapping is closed`);
    }
  }

  #range(call, offset, length) {
    this.#check(call);
    checkSize(call, 'offset', offset);
    checkSize(call, 'length', length);
    if (offset > this.#size || length > this.#size - offset) {
      throw new PmemError(
        call,
        os.constants.errno.EINVAL,
        `${call}: offset ${offset}, length ${length}: outside the mapping (${this.#size} bytes)`,
      );
    }
  }
}

/**
 * Open path (creating it with FILE_CREATE), size it and map it. size 0
 * without FILE_CREATE maps the whole existing file; mode gives the
 * permissions of a created file.
 */
function mapFile(file, size = 0, flags = 0, mode = 0o666) {
  const call = 'pmem_sys_map_file';
  const p = file instanceof URL ? fileURLToPath(file) : file;
  if (typeof p !== 'string') {
    throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `${call}: path must be a string or a file: URL`);
  }
  if (p.includes('\0')) {
    // koffi would cut the string at the NUL and map another file.
    throw new PmemError(call, os.constants.errno.EINVAL, `${call}: path ${JSON.stringify(p)}: contains a NUL byte`);
  }
  checkSize(call, 'size', size);
  checkSize(call, 'flags', flags, 0xffffffff);
  checkSize(call, 'mode', mode, 0o7777);
  const mapped = [0];
  const addr = c.map_file(p, size, flags, mode, mapped);
  if (addr === 0) throw libraryError(call);
  checkAddress(call, addr);
  return new Mapping(INTERNAL, addr, Number(mapped[0]));
}

/**
 * Map [offset, offset + size) of fd, which must be open read-write;
 * offset a multiple of the page size (a Number or a BigInt).
 */
function memremap(fd, offset, size) {
  const call = 'memremap_pmem';
  if (!Number.isInteger(fd) || fd < -(2 ** 31) || fd >= 2 ** 31) {
    throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `${call}: fd must be a 32-bit integer`);
  }
  if (typeof offset === 'bigint') {
    if (offset < 0n || offset >= 1n << 64n) {
      throw argError(RangeError, 'ERR_OUT_OF_RANGE', `${call}: offset ${offset}: not a 64-bit unsigned value`);
    }
  } else {
    checkSize(call, 'offset', offset);
  }
  checkSize(call, 'size', size);
  const addr = c.memremap(fd, offset, size);
  if (addr === 0) throw libraryError(call);
  checkAddress(call, addr);
  return new Mapping(INTERNAL, addr, size);
}

/**
 * Copy min(dst.byteLength, src.byteLength) bytes into dst with
 * memcpy_to_pmem (pmem_sys_memmove when both are views of one
 * ArrayBuffer, so overlap is fine); dst is normally a view of a Mapping's
 * buffer. Not ordered: follow with drain(). Returns the count.
 */
function memcpyToPmem(dst, src) {
  const d = toBytes('memcpyToPmem', dst);
  const s = toBytes('memcpyToPmem', src);
  if (typeof dst === 'string') {
    throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', 'memcpyToPmem: dst must be a TypedArray, DataView or ArrayBuffer');
  }
  const n = Math.min(d.length, s.length);
  if (n === 0) return 0;
  // Views of one ArrayBuffer may overlap: move, as TypedArray.set would.
  if (d.buffer === s.buffer) c.memmove_view(d, s, n);
  else c.memcpy_to_view(d, s, n);
  return n;
}

/** wmb_pmem(): make earlier copies and write-backs durable (SFENCE; msync of page-granular ranges). */
function wmbPmem() {
  c.wmb_pmem();
}

/** wmbPmem() that throws when an msync of a page-granular range failed. */
function drain() {
  if (c.drain() !== 0) throw libraryError('pmem_sys_drain');
}

module.exports = {
  mapFile,
  memremap,
  memcpyToPmem,
  wmbPmem,
  drain,
  archHasPmemApi: () => c.arch_has_pmem_api(),
  archHasWmbPmem: () => c.arch_has_wmb_pmem(),
  implementation: () => c.impl(),
  version: () => c.version(),
  resolveLibrary,
  /** The library file loaded and how it was found. */
  library: Object.freeze({ ...library }),
  Mapping,
  PmemError,
  FILE_CREATE,
  FILE_EXCL,
  FILE_SPARSE,
  FILE_TMPFILE,
  F_NODRAIN,
  F_NONTEMPORAL,
  F_TEMPORAL,
  F_WC,
  F_WB,
  F_NOFLUSH,
};
