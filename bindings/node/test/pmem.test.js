'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const pmem = require('..');

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmem-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Asserts that fn throws a PmemError with this code whose message holds
// every fragment.
function throwsCode(fn, code, ...fragments) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected ${code}, nothing was thrown`);
  assert.ok(caught instanceof Error, 'not an Error');
  assert.ok(caught instanceof pmem.PmemError, `not a PmemError: ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.errno, os.constants.errno[code]);
  for (const f of fragments) assert.ok(caught.message.includes(f), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(f)}`);
  return caught;
}

// Runs a script in a fresh node with the given environment changes
// (undefined removes a variable) and returns its parsed JSON output.
function runNode(args, envChanges) {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(envChanges)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8', cwd: path.join(__dirname, '..') });
  return r;
}

test('a missing file gives ENOENT with the library message', (t) => {
  const file = path.join(tempDir(t), 'absent.pmem');
  const e = throwsCode(() => pmem.mapFile(file), 'ENOENT', 'pmem_sys_map_file', file);
  assert.equal(e.syscall, 'pmem_sys_map_file');
});

test('FILE_EXCL on an existing file gives EEXIST and leaves it alone', (t) => {
  const file = path.join(tempDir(t), 'exists.pmem');
  fs.writeFileSync(file, 'keep me');
  throwsCode(() => pmem.mapFile(file, 4096, pmem.FILE_CREATE | pmem.FILE_EXCL, 0o600), 'EEXIST', 'EXCL');
  assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
});

test('unknown flags give EINVAL and create nothing', (t) => {
  const file = path.join(tempDir(t), 'f.pmem');
  throwsCode(() => pmem.mapFile(file, 4096, pmem.FILE_CREATE | 0x100, 0o600), 'EINVAL', 'unknown bits 0x100');
  throwsCode(() => pmem.mapFile(file, 4096, pmem.FILE_EXCL, 0o600), 'EINVAL', 'require PMEM_SYS_FILE_CREATE');
  assert.equal(fs.existsSync(file), false);
});

test('bad arguments are refused before the library sees them', (t) => {
  const file = path.join(tempDir(t), 'f.pmem');
  throwsCode(() => pmem.mapFile(`${file}\0other`, 4096, pmem.FILE_CREATE), 'EINVAL', 'NUL');
  assert.throws(() => pmem.mapFile(file, -1, pmem.FILE_CREATE), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.mapFile(file, 1.5, pmem.FILE_CREATE), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.mapFile(42), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  // Values that the C types would silently wrap: 2**32 + 1 must not become FILE_CREATE.
  assert.throws(() => pmem.mapFile(file, 4096, 2 ** 32 + pmem.FILE_CREATE), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.mapFile(file, 4096, pmem.FILE_CREATE, 0o10000), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.memremap(2 ** 32, 0, 4096), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new pmem.Mapping(), { name: 'TypeError' });
  assert.equal(fs.existsSync(file), false);
});

test('memremap of a read-only descriptor gives EACCES', (t) => {
  const file = path.join(tempDir(t), 'ro.pmem');
  fs.writeFileSync(file, Buffer.alloc(8192));
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  throwsCode(() => pmem.memremap(fd, 0, 4096), 'EACCES', 'memremap_pmem', 'read-only');
  throwsCode(() => pmem.memremap(-1, 0, 4096), 'EBADF', 'memremap_pmem');
});

test('memremap maps a range at an offset, and the fd may be closed', (t) => {
  const file = path.join(tempDir(t), 'rw.pmem');
  const page = 4096;
  fs.writeFileSync(file, Buffer.alloc(3 * page));
  const fd = fs.openSync(file, 'r+');
  throwsCode(() => pmem.memremap(fd, 1, page), 'EINVAL', 'page size');
  assert.throws(() => pmem.memremap(fd, -1n, page), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.memremap(fd, -4096, page), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pmem.memremap('3', 0, page), { code: 'ERR_INVALID_ARG_TYPE' });
  throwsCode(() => pmem.memremap(fd, 0, 3 * page + 1), 'EINVAL', 'past the end of the file');
  const m = pmem.memremap(fd, BigInt(page), page);
  fs.closeSync(fd);
  assert.equal(m.size, page);
  m.write(3, 'second page');
  m.persist();
  assert.equal(m.close(), true);
  const data = fs.readFileSync(file);
  assert.equal(data.subarray(page + 3, page + 14).toString(), 'second page');
  assert.ok(data.subarray(0, page).every((b) => b === 0), 'the first page changed');
});

test('round trip: write, persist, close, read the file', (t) => {
  const file = path.join(tempDir(t), 'rt.pmem');
  const size = 3 * 4096 + 100;
  const m = pmem.mapFile(file, size, pmem.FILE_CREATE | pmem.FILE_EXCL, 0o600);
  assert.equal(m.size, size);
  const big = Buffer.from('0123456789abcdef'.repeat(600)); // past the non-temporal threshold
  assert.equal(m.write(7, big), big.length);
  assert.equal(m.write(size - 4, new Uint16Array([0x6261, 0x6463])), 4);
  pmem.drain();
  m.persist(0, size);
  assert.deepEqual(m.read(7, big.length), big);
  m.close();
  const data = fs.readFileSync(file);
  assert.equal(data.length, size);
  assert.deepEqual(data.subarray(7, 7 + big.length), big);
  assert.equal(data.subarray(size - 4).toString(), 'abcd');
  assert.equal(data[6], 0);
  assert.equal(data[7 + big.length], 0);
});

test('buffer is the mapped memory itself, not a copy', (t) => {
  const file = path.join(tempDir(t), 'view.pmem');
  const m = pmem.mapFile(file, 4096, pmem.FILE_CREATE, 0o600);
  const buf = m.buffer;
  assert.ok(buf instanceof ArrayBuffer);
  assert.equal(buf.byteLength, 4096);
  assert.equal(m.buffer, buf, 'buffer is not one ArrayBuffer');
  const view = new Uint8Array(buf);

  // The library writes; the ArrayBuffer taken before sees it.
  m.write(100, 'through the library');
  assert.equal(Buffer.from(buf, 100, 19).toString(), 'through the library');

  // Stores through the view are read back by the library and reach the file.
  Buffer.from(buf).write('plain stores', 2000);
  assert.equal(m.read(2000, 12).toString(), 'plain stores');
  assert.equal(pmem.memcpyToPmem(view.subarray(3000, 3010), Buffer.from('by memcpyToPmem')), 10);
  assert.equal(m.read(3000, 11).toString('latin1'), 'by memcpyT\0');
  pmem.wmbPmem();
  m.persist(2000, 1010);
  m.close();
  const data = fs.readFileSync(file);
  assert.equal(data.subarray(2000, 2012).toString(), 'plain stores');
  assert.equal(data.subarray(3000, 3010).toString(), 'by memcpyT');
});

test('offsets and lengths outside the mapping are refused and touch nothing', () => {
  const m = pmem.mapFile(os.tmpdir(), 4096, pmem.FILE_CREATE | pmem.FILE_TMPFILE, 0o600);
  const view = new Uint8Array(m.buffer);
  view.fill(0xaa);
  for (const [off, n] of [[4089, 8], [4096, 1], [4097, 0]]) {
    throwsCode(() => m.write(off, Buffer.alloc(n)), 'EINVAL', 'Mapping.write', 'outside the mapping');
    throwsCode(() => m.read(off, n), 'EINVAL', 'Mapping.read', 'outside the mapping');
    throwsCode(() => m.persist(off, n), 'EINVAL', 'Mapping.persist', 'outside the mapping');
  }
  throwsCode(() => m.persist(8, Number.MAX_SAFE_INTEGER), 'EINVAL', 'Mapping.persist');
  for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 53, '8', 8n]) {
    assert.throws(() => m.write(bad, 'x'), { code: 'ERR_OUT_OF_RANGE' }, String(bad));
    assert.throws(() => m.read(0, bad), { code: 'ERR_OUT_OF_RANGE' }, String(bad));
  }
  assert.throws(() => m.write(0, 42), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.ok(view.every((b) => b === 0xaa), 'a refused call changed the mapping');
  // The edges themselves are fine.
  m.write(4088, Buffer.alloc(8));
  m.write(4096, '');
  m.persist(4096, 0);
  assert.equal(m.read(4096, 0).length, 0);
  m.close();
});

test('copies between overlapping views of the mapping move correctly', () => {
  const m = pmem.mapFile(os.tmpdir(), 8192, pmem.FILE_CREATE | pmem.FILE_TMPFILE, 0o600);
  const b = new Uint8Array(m.buffer);
  const pattern = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  const reset = () => {
    b.fill(0);
    b.set(pattern, 1000);
  };
  reset(); // destination after the source
  assert.equal(m.write(1003, b.subarray(1000, 6000)), 5000);
  assert.deepEqual(b.subarray(1003, 6003), pattern);
  reset(); // destination before the source
  assert.equal(pmem.memcpyToPmem(b.subarray(997), b.subarray(1000, 6000)), 5000);
  assert.deepEqual(b.subarray(997, 5997), pattern);
  reset(); // a Buffer over the same memory counts as the same ArrayBuffer
  m.write(1064, Buffer.from(m.buffer, 1000, 5000));
  assert.deepEqual(b.subarray(1064, 6064), pattern);
  m.close();
});

test('every call after close throws EBADF', () => {
  const m = pmem.mapFile(os.tmpdir(), 4096, pmem.FILE_CREATE | pmem.FILE_TMPFILE, 0o600);
  assert.equal(m.close(), true);
  assert.equal(m.closed, true);
  throwsCode(() => m.write(0, 'x'), 'EBADF', 'Mapping.write', 'closed');
  throwsCode(() => m.read(0, 1), 'EBADF', 'Mapping.read');
  throwsCode(() => m.persist(), 'EBADF', 'Mapping.persist');
  throwsCode(() => m.granularity(), 'EBADF', 'Mapping.granularity');
  throwsCode(() => m.reason(), 'EBADF', 'Mapping.reason');
  throwsCode(() => m.buffer, 'EBADF', 'Mapping.buffer');
  throwsCode(() => m.close(), 'EBADF', 'Mapping.close');
  assert.equal(m.size, 4096);
});

test('a buffer outlives close(); the unmap waits for the garbage collector', () => {
  // In a child: a fault there fails this test instead of killing the runner.
  const r = runNode(['--expose-gc', path.join(__dirname, '..', 'fixtures', 'deferred-unmap.js')], {});
  assert.equal(r.status, 0, `child failed (signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out, {
    closeWithoutBuffer: true,
    unmappedAtOnce: true,
    closeWithBuffer: false,
    mappedAfterClose: true,
    readAfterClose: 'still here',
    unmappedAfterGc: true,
  });
});

test('granularity and reason', () => {
  const m = pmem.mapFile(os.tmpdir(), 4096, pmem.FILE_CREATE | pmem.FILE_TMPFILE, 0o600);
  assert.ok(['byte', 'cache_line', 'page'].includes(m.granularity()));
  assert.match(m.reason(), /granularity|msync/);
  m.close();
});

test('PMEM_SYS_FORCE_GRANULARITY reaches the library', () => {
  const r = runNode(
    ['-e', `const p = require('.'); const m = p.mapFile(require('os').tmpdir(), 4096, p.FILE_CREATE | p.FILE_TMPFILE, 0o600);
            console.log(JSON.stringify([m.granularity(), m.reason()]));`],
    { PMEM_SYS_FORCE_GRANULARITY: 'byte' },
  );
  assert.equal(r.status, 0, r.stderr);
  const [g, reason] = JSON.parse(r.stdout);
  assert.equal(g, 'byte');
  assert.match(reason, /PMEM_SYS_FORCE_GRANULARITY/);
});

test('package functions', () => {
  const impl = pmem.implementation();
  assert.match(impl, /^[a-z0-9_]+\/[a-z0-9]+\+[a-z0-9-]+$/);
  assert.match(pmem.version(), /^\d+\.\d+\.\d+$/);
  const generic = impl.startsWith('generic/');
  assert.equal(pmem.archHasPmemApi(), !generic);
  assert.equal(pmem.archHasWmbPmem(), !generic);
  const dst = new Uint8Array(5);
  assert.equal(pmem.memcpyToPmem(dst, 'abc'), 3);
  assert.deepEqual([...dst], [97, 98, 99, 0, 0]);
  assert.equal(pmem.memcpyToPmem(new Uint8Array(0), 'abc'), 0);
  assert.throws(() => pmem.memcpyToPmem('dst', 'abc'), { code: 'ERR_INVALID_ARG_TYPE' });
  pmem.drain();
});

// The discovery tests run against the install PMEM_SYS_LIB names (the
// staged one under make test), each in a fresh node.
const stagedLib = process.env.PMEM_SYS_LIB;
const probe = ['-e', "const p = require('.'); console.log(JSON.stringify([p.library, p.implementation()]))"];
const noStage = stagedLib ? false : 'PMEM_SYS_LIB is not set, so there is no known install to find';

test('library discovery: PMEM_SYS_LIB comes first', { skip: noStage }, () => {
  const r = runNode(probe, { PMEM_SYS_LIB: stagedLib });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout)[0], { path: stagedLib, source: 'PMEM_SYS_LIB' });
});

test('library discovery: then the libdir pkg-config reports', { skip: noStage }, (t) => {
  const pcdir = path.join(path.dirname(stagedLib), 'pkgconfig');
  if (!fs.existsSync(path.join(pcdir, 'pmem-sys.pc'))) {
    t.skip(`no pmem-sys.pc in ${pcdir}`);
    return;
  }
  const env = { PMEM_SYS_LIB: undefined, PKG_CONFIG_PATH: pcdir, PKG_CONFIG_LIBDIR: undefined, LD_LIBRARY_PATH: '' };
  const libdir = spawnSync('pkg-config', ['--variable=libdir', 'pmem-sys'], {
    encoding: 'utf8',
    env: { ...process.env, PKG_CONFIG_PATH: pcdir },
  }).stdout.trim();
  assert.ok(libdir, 'pkg-config reports no libdir');
  const r = runNode(probe, env);
  assert.equal(r.status, 0, r.stderr);
  const [where, impl] = JSON.parse(r.stdout);
  assert.deepEqual(where, { path: path.join(libdir, 'libpmem_sys.so.0'), source: 'pkg-config' });
  assert.match(impl, /\//);
});

test('library discovery: then the loader searches for the SONAME', { skip: noStage }, () => {
  const env = { PMEM_SYS_LIB: undefined, PKG_CONFIG_PATH: '', PKG_CONFIG_LIBDIR: '/nonexistent', LD_LIBRARY_PATH: path.dirname(stagedLib) };
  const r = runNode(probe, env);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout)[0], { path: 'libpmem_sys.so.0', source: 'default search' });
});

test('library discovery: a wrong PMEM_SYS_LIB fails at require, naming it', () => {
  const r = runNode(['-e', "try { require('.') } catch (e) { console.log(JSON.stringify([e.code, e.message])) }"], {
    PMEM_SYS_LIB: '/nonexistent/libpmem_sys.so.0',
  });
  assert.equal(r.status, 0, r.stderr);
  const [code, message] = JSON.parse(r.stdout);
  assert.equal(code, 'ERR_PMEM_SYS_LOAD');
  assert.match(message, /\/nonexistent\/libpmem_sys\.so\.0 \(found by PMEM_SYS_LIB\)/);
});
