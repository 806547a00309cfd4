/** The store granularity of a mapping: what a store needs to become durable. */
export type Granularity = 'byte' | 'cache_line' | 'page';

/** A failure of the library or of an argument check made before calling it. */
export class PmemError extends Error {
  /** 'ENOENT', 'EEXIST', 'EINVAL', 'EACCES', 'EBADF' (closed mapping)... */
  code: string;
  /** The positive errno value, as in os.constants.errno. */
  errno: number;
  /** The library call ('pmem_sys_map_file') or method ('Mapping.write'). */
  syscall: string;
}

/** A range of a file or device-DAX node mapped by the library. */
export class Mapping {
  private constructor();
  /** Length in bytes, as asked for. */
  readonly size: number;
  /** The start address. */
  readonly address: number;
  readonly closed: boolean;
  /**
   * The mapped memory itself (no copy), always the same ArrayBuffer. It
   * stays valid after close(); the unmap then waits until it is
   * garbage-collected.
   */
  readonly buffer: ArrayBuffer;
  /** The checked copy at offset (throws EIO on a bus error); not ordered until drain(). Returns the byte count. */
  write(offset: number, data: string | ArrayBufferView | ArrayBuffer): number;
  /** A copy of length bytes at offset (throws EIO on a bus error). */
  read(offset: number, length: number): Buffer;
  /** pmem_sys_memcpy_flags at offset with F_* flags (default 0: drained); not fault-safe. Returns the byte count. */
  writeFlags(offset: number, data: string | ArrayBufferView | ArrayBuffer, flags?: number): number;
  /** pmem_sys_memmove_flags inside the mapping; not fault-safe. */
  move(dstOffset: number, srcOffset: number, length: number, flags?: number): void;
  /** pmem_sys_memset_flags; not fault-safe. */
  memset(offset: number, value: number, length: number, flags?: number): void;
  /** pmem_sys_deep_flush; the whole mapping by default. */
  deepFlush(offset?: number, length?: number): void;
  /** pmem_sys_deep_persist; the whole mapping by default. */
  deepPersist(offset?: number, length?: number): void;
  /** Make [offset, offset + length) durable now; the whole mapping by default. */
  persist(offset?: number, length?: number): void;
  granularity(): Granularity;
  reason(): string;
  /** Later calls throw EBADF. True when unmapped now, false when deferred to the GC of `buffer`. */
  close(): boolean;
}

export const FILE_CREATE: number;
export const FILE_EXCL: number;
export const FILE_SPARSE: number;
export const FILE_TMPFILE: number;
/** Store flags (PMDK's PMEM_F_MEM_* values). */
export const F_NODRAIN: number;
export const F_NONTEMPORAL: number;
export const F_TEMPORAL: number;
export const F_WC: number;
export const F_WB: number;
export const F_NOFLUSH: number;

export function mapFile(path: string | URL, size?: number, flags?: number, mode?: number): Mapping;
export function memremap(fd: number, offset: number | bigint, size: number): Mapping;
/** Copies min(dst.byteLength, src.byteLength) bytes; returns the count. Not ordered until drain(). */
export function memcpyToPmem(dst: ArrayBufferView | ArrayBuffer, src: string | ArrayBufferView | ArrayBuffer): number;
export function wmbPmem(): void;
export function drain(): void;
export function archHasPmemApi(): boolean;
export function archHasWmbPmem(): boolean;
export function implementation(): string;
export function version(): string;

export interface LibraryLocation {
  path: string;
  source: 'PMEM_SYS_LIB' | 'pkg-config' | 'default search';
}
export function resolveLibrary(env?: NodeJS.ProcessEnv): LibraryLocation;
/** The library file loaded and how it was found. */
export const library: Readonly<LibraryLocation>;
