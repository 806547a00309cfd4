'use strict';
// Bus errors: a file truncated under a live mapping. read() and write()
// must throw with code 'EIO' (never return stale or zero bytes, never kill
// the process) and the pages still backed must keep working.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const pmem = require('..');

function eio(fn, call) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'expected EIO, nothing was thrown');
  assert.ok(caught instanceof pmem.PmemError, `not a PmemError: ${caught}`);
  assert.equal(caught.code, 'EIO', caught.message);
  assert.equal(caught.errno, os.constants.errno.EIO);
  assert.equal(caught.syscall, call);
  assert.ok(caught.message.startsWith(call), caught.message);
  return caught;
}

test('read and write of a truncated page throw EIO and the process goes on', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmem-node-fault-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'truncated.pmem');
  const m = pmem.mapFile(file, 3 * 4096, pmem.FILE_CREATE, 0o600);
  t.after(() => {
    if (!m.closed) m.close();
  });
  m.write(0, Buffer.alloc(3 * 4096, 'Z'));
  m.persist();
  fs.truncateSync(file, 4096);

  eio(() => m.read(2 * 4096, 4), 'memcpy_from_pmem');
  eio(() => m.read(0, 8192), 'memcpy_from_pmem'); // starts on the backed page
  eio(() => m.write(2 * 4096, 'data'), 'pmem_sys_memcpy_to_pmem_checked');
  // An overlapping write whose source, a view of the mapping, is in the hole.
  const view = new Uint8Array(m.buffer, 2 * 4096, 8);
  eio(() => m.write(2 * 4096 + 1, view), 'memcpy_from_pmem');

  // Still alive, and the first page still works.
  assert.equal(m.write(0, 'alive'), 5);
  assert.equal(m.read(0, 5).toString(), 'alive');
  m.persist(0, 5);
  assert.equal(fs.readFileSync(file, 'latin1').slice(0, 6), 'aliveZ');
});
