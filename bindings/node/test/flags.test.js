'use strict';
// Per-call store flags and the deep flush (issue 12 item 3): every flag
// combination through writeFlags, memset and move stores exactly the bytes
// asked for, read back through the mapping and the file; unknown bits and
// bad ranges throw before anything is stored; run again in child processes
// with the byte and cache-line granularity forced (the knob is read when
// the library loads).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const pmem = require('..');

test('flag values are PMDK\'s', () => {
  assert.deepEqual(
    [pmem.F_NODRAIN, pmem.F_NONTEMPORAL, pmem.F_TEMPORAL, pmem.F_WC, pmem.F_WB, pmem.F_NOFLUSH],
    [1, 2, 4, 8, 16, 32],
  );
});

test('every flag combination stores the data', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmem-node-flags-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'flags.pmem');
  const size = 4 << 20;
  const m = pmem.mapFile(file, size, pmem.FILE_CREATE, 0o600);
  t.after(() => m.closed || m.close());
  if (process.env.PMEM_SYS_FORCE_GRANULARITY) {
    assert.equal(m.granularity(), process.env.PMEM_SYS_FORCE_GRANULARITY);
  }
  const want = Buffer.alloc(size);
  let off = 0;
  for (let f = 0; f <= 63; f++) {
    [1, 7, 64, 300, 8192].forEach((n, i) => {
      const p = Buffer.alloc(n);
      for (let j = 0; j < n; j++) p[j] = (f * 7 + i * 13 + j) & 0xff;
      const o = off + 3;
      assert.equal(m.writeFlags(o, p, f), n);
      p.copy(want, o);
      const o2 = o + n + 5;
      m.memset(o2, f | 0x80, n, f);
      want.fill(f | 0x80, o2, o2 + n);
      m.move(o + 1, o, n, f); // overlapping, forwards
      Buffer.from(want.subarray(o, o + n)).copy(want, o + 1);
      m.move(o2 - 1, o2, n, f); // overlapping, backwards
      Buffer.from(want.subarray(o2, o2 + n)).copy(want, o2 - 1);
      off = o2 + n + 64;
    });
  }
  assert.ok(off <= size);
  assert.ok(m.read(0, off).equals(want.subarray(0, off)), 'the mapping differs');
  m.persist(0, off);
  assert.ok(fs.readFileSync(file).subarray(0, off).equals(want.subarray(0, off)), 'the file differs');
});

test('bad flags and ranges throw and store nothing; deep flush and persist', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmem-node-flags-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const m = pmem.mapFile(path.join(dir, 'f.pmem'), 8192, pmem.FILE_CREATE, 0o600);
  for (const bad of [64, 2 ** 31, 0xffffffff]) {
    assert.throws(() => m.writeFlags(0, 'x', bad), { code: 'EINVAL', syscall: 'Mapping.writeFlags' });
    assert.throws(() => m.memset(0, 120, 1, bad), { code: 'EINVAL' });
    assert.throws(() => m.move(1, 0, 1, bad), { code: 'EINVAL' });
  }
  assert.throws(() => m.writeFlags(0, 'x', 2 ** 32), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => m.writeFlags(0, 'x', -1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => m.memset(0, 256, 1), { code: 'ERR_OUT_OF_RANGE' });
  assert.deepEqual([...m.read(0, 2)], [0, 0]);
  assert.throws(() => m.writeFlags(8190, 'xyz'), { code: 'EINVAL' });
  assert.throws(() => m.move(0, 8000, 500), { code: 'EINVAL' });
  assert.throws(() => m.deepPersist(8000, 500), { code: 'EINVAL', syscall: 'Mapping.deepPersist' });
  assert.throws(() => m.deepFlush(0, 9000), { code: 'EINVAL' });
  m.writeFlags(100, 'deep', pmem.F_NOFLUSH);
  m.deepFlush(100, 4);
  m.deepPersist();
  assert.equal(m.read(100, 4).toString(), 'deep');
  m.close();
  for (const fn of [() => m.writeFlags(0, 'x'), () => m.memset(0, 0, 1), () => m.move(0, 1, 1), () => m.deepFlush(), () => m.deepPersist()]) {
    assert.throws(fn, { code: 'EBADF' });
  }
});

for (const g of ['byte', 'cache_line']) {
  test(`the same with PMEM_SYS_FORCE_GRANULARITY=${g}`, { skip: process.env.PMEM_SYS_FORCE_GRANULARITY ? 'in the child' : false }, () => {
    // NODE_TEST_CONTEXT would make the child report to this runner
    // instead of printing its results.
    const env = { ...process.env, PMEM_SYS_FORCE_GRANULARITY: g };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=stores the data|bad flags', __filename], {
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# pass 2\n/, r.stdout);
    assert.match(r.stdout, /# fail 0\n/, r.stdout);
  });
}
