// Files through the SDK: upload (string, bytes, stream), download (full,
// Range, stream), info, search, list, replace contents, move, delete, make
// directories, permissions and owner/group.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { createSandbox, killAll, sleep } from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

describe("files", () => {
  const sandboxes = [];
  let sandbox;

  before(async () => {
    sandbox = await createSandbox(sandboxes, { metadata: { tag: "e2e-files" } });
  });
  after(() => killAll(sandboxes));

  test("CRUD + replace/move/delete + range + stream (upstream 03)", T, async () => {
    const ts = Date.now();
    const dir1 = `/tmp/fs_test1_${ts}`;
    const dir2 = `/tmp/fs_test2_${ts}`;

    await sandbox.files.createDirectories([
      { path: dir1, mode: 755 },
      { path: dir2, mode: 644 },
    ]);
    const infoMap = await sandbox.files.getFileInfo([dir1, dir2]);
    assert.equal(infoMap[dir1]?.path, dir1);
    assert.equal(infoMap[dir2]?.path, dir2);
    assert.equal(infoMap[dir1]?.type, "directory");
    assert.equal(infoMap[dir1]?.mode, 755);
    assert.equal(infoMap[dir2]?.mode, 644);

    const ls = await sandbox.commands.run("ls -la | grep fs_test", { workingDirectory: "/tmp" });
    assert.equal(ls.error, undefined);
    assert.equal(ls.logs.stdout.length, 2);

    const file1 = `${dir1}/test_file1.txt`;
    const file2 = `${dir1}/test_file2.txt`;
    const file3 = `${dir1}/test_file3.txt`;
    const content = "Hello Filesystem!\nLine 2 with special chars: åäö\nLine 3";
    const bytes = new TextEncoder().encode(content);

    await sandbox.files.writeFiles([
      { path: file1, data: content, mode: 644 },
      { path: file2, data: bytes, mode: 755 },
      { path: file3, data: bytes, mode: 755, owner: "nobody", group: "nogroup" },
    ]);

    const info = await sandbox.files.getFileInfo([file1, file2, file3]);
    assert.equal(info[file1].type, "file");
    assert.equal(info[file1].size, bytes.length);
    assert.equal(info[file1].mode, 644);
    assert.equal(info[file2].mode, 755);
    assert.equal(info[file3].owner, "nobody");
    assert.equal(info[file3].group, "nogroup");
    assert.equal(info[file1].owner, "root");
    assert.ok(info[file1].modifiedAt instanceof Date);
    assert.ok(info[file1].createdAt instanceof Date);
    assert.ok(Math.abs(info[file1].modifiedAt - info[file1].createdAt) <= 2000);
    assert.ok(Math.abs(info[file1].modifiedAt - Date.now()) < 60_000);

    const searched = await sandbox.files.search({ path: dir1, pattern: "*" });
    const paths = new Set(searched.map((f) => f.path));
    assert.ok(paths.has(file1) && paths.has(file2) && paths.has(file3), [...paths].join(","));
    assert.equal(searched.length, 3);

    const read1 = await sandbox.files.readFile(file1, { encoding: "utf-8" });
    const read1Partial = await sandbox.files.readFile(file1, { encoding: "utf-8", range: "bytes=0-9" });
    const read2 = await sandbox.files.readBytes(file2);
    let read3 = new Uint8Array();
    for await (const chunk of sandbox.files.readBytesStream(file3)) {
      const merged = new Uint8Array(read3.length + chunk.length);
      merged.set(read3, 0);
      merged.set(chunk, read3.length);
      read3 = merged;
    }
    assert.equal(read1, content);
    assert.equal(new TextDecoder().decode(read2), content);
    assert.equal(new TextDecoder().decode(read3), content);
    assert.equal(read1Partial, content.slice(0, 10));

    await sandbox.files.setPermissions([
      { path: file1, mode: 755, owner: "nobody", group: "nogroup" },
      { path: file2, mode: 600, owner: "nobody", group: "nogroup" },
    ]);
    const perms = await sandbox.files.getFileInfo([file1, file2]);
    assert.equal(perms[file1]?.mode, 755);
    assert.equal(perms[file1]?.owner, "nobody");
    assert.equal(perms[file1]?.group, "nogroup");
    assert.equal(perms[file2]?.mode, 600);
    // find, not stat: coreutils' stat fails under gVisor (docs/gvisor.md).
    const statOut = await sandbox.commands.run(`find ${file2} -maxdepth 0 -printf '%m %u %g\\n'`);
    assert.equal(statOut.logs.stdout[0]?.text, "600 nobody nogroup");

    const updated1 = `${content}\nAppended line to file1`;
    const updated2 = `${content}\nAppended line to file2`;
    await sleep(50);
    await sandbox.files.writeFiles([
      { path: file1, data: updated1, mode: 644 },
      { path: file2, data: updated2, mode: 755 },
    ]);
    assert.equal(await sandbox.files.readFile(file1), updated1);
    assert.equal(await sandbox.files.readFile(file2), updated2);
    const rewritten = await sandbox.files.getFileInfo([file1]);
    assert.ok(rewritten[file1].modifiedAt >= info[file1].modifiedAt);
    assert.equal(rewritten[file1].size, new TextEncoder().encode(updated1).length);

    await sleep(50);
    await sandbox.files.replaceContents([
      { path: file1, oldContent: "Appended line to file1", newContent: "Replaced line in file1" },
    ]);
    const replaced = await sandbox.files.readFile(file1);
    assert.ok(replaced.includes("Replaced line in file1"));
    assert.ok(!replaced.includes("Appended line to file1"));

    const movedPath = `${dir2}/moved_file3.txt`;
    await sandbox.files.moveFiles([{ src: file3, dest: movedPath }]);
    assert.equal(await sandbox.files.readFile(movedPath), content);
    await assert.rejects(sandbox.files.readFile(file3));

    await sandbox.files.deleteFiles([file2]);
    await assert.rejects(sandbox.files.readFile(file2));
    const left = await sandbox.files.search({ path: dir1, pattern: "*" });
    assert.deepEqual(left.map((f) => f.path), [file1]);

    await sandbox.files.deleteDirectories([dir1, dir2]);
    const verify = await sandbox.commands.run(`test ! -d ${dir1} && test ! -d ${dir2} && echo OK`);
    assert.equal(verify.error, undefined);
    assert.equal(verify.logs.stdout[0]?.text, "OK");
  });

  test("replaceContentsDetailed counts", T, async () => {
    const dir = `/tmp/replace_${Date.now()}`;
    const a = `${dir}/a.txt`;
    const b = `${dir}/b.txt`;
    await sandbox.files.writeFiles([
      { path: a, data: "foo bar foo baz foo" },
      { path: b, data: "one two one" },
    ]);
    const r1 = await sandbox.files.replaceContentsDetailed([{ path: a, oldContent: "foo", newContent: "X" }]);
    assert.deepEqual(r1, [{ path: a, replacedCount: 3 }]);
    assert.equal(await sandbox.files.readFile(a), "X bar X baz X");
    const r0 = await sandbox.files.replaceContentsDetailed([{ path: a, oldContent: "absent", newContent: "Y" }]);
    assert.deepEqual(r0, [{ path: a, replacedCount: 0 }]);
    const batch = await sandbox.files.replaceContentsDetailed([
      { path: a, oldContent: "X", newContent: "Z" },
      { path: b, oldContent: "one", newContent: "1" },
    ]);
    const byPath = Object.fromEntries(batch.map((x) => [x.path, x.replacedCount]));
    assert.deepEqual(byPath, { [a]: 3, [b]: 2 });
    assert.equal(await sandbox.files.readFile(b), "1 two 1");
    await assert.rejects(
      sandbox.files.replaceContents([{ path: `${dir}/missing.txt`, oldContent: "a", newContent: "b" }]),
    );
    await sandbox.files.deleteDirectories([dir]);
  });

  test("binary upload by stream, download with Range and by stream", T, async () => {
    const dir = `/tmp/bin_${Date.now()}`;
    const path = `${dir}/sub/blob.bin`;
    const data = randomBytes(3 * 1024 * 1024 + 123);
    async function* chunks() {
      for (let off = 0; off < data.length; off += 256 * 1024) yield data.subarray(off, off + 256 * 1024);
    }
    await sandbox.files.writeFiles([{ path, data: chunks(), mode: 600 }]);
    const info = await sandbox.files.getFileInfo([path]);
    assert.equal(info[path].size, data.length);
    assert.equal(info[path].mode, 600);

    const full = await sandbox.files.readBytes(path);
    assert.equal(full.length, data.length);
    assert.equal(sha256(full), sha256(data));

    const part = await sandbox.files.readBytes(path, { range: "bytes=1000-1999" });
    assert.equal(part.length, 1000);
    assert.equal(sha256(part), sha256(data.subarray(1000, 2000)));
    const tail = await sandbox.files.readBytes(path, { range: `bytes=${data.length - 10}-` });
    assert.equal(sha256(tail), sha256(data.subarray(data.length - 10)));

    let n = 0;
    const h = createHash("sha256");
    for await (const c of sandbox.files.readBytesStream(path)) {
      n += c.length;
      h.update(c);
    }
    assert.equal(n, data.length);
    assert.equal(h.digest("hex"), sha256(data));

    const inSandbox = await sandbox.commands.run(`sha256sum ${path} | cut -d' ' -f1`);
    assert.equal(inSandbox.logs.stdout[0]?.text, sha256(data));
    await sandbox.files.deleteDirectories([dir]);
  });

  test("search by pattern, list directory, info errors", T, async () => {
    const dir = `/tmp/search_${Date.now()}`;
    await sandbox.files.writeFiles([
      { path: `${dir}/a.txt`, data: "a" },
      { path: `${dir}/b.log`, data: "b" },
      { path: `${dir}/nested/c.txt`, data: "c" },
      { path: `${dir}/nested/deeper/d.txt`, data: "d" },
    ]);
    const txt = await sandbox.files.search({ path: dir, pattern: "*.txt" });
    assert.deepEqual(
      txt.map((f) => f.path).sort(),
      [`${dir}/a.txt`, `${dir}/nested/c.txt`, `${dir}/nested/deeper/d.txt`],
    );
    assert.ok(txt.every((f) => f.type === "file" && f.size === 1));

    const top = await sandbox.files.listDirectory({ path: dir, depth: 1 });
    assert.deepEqual(
      top.map((f) => f.path).sort(),
      [`${dir}/a.txt`, `${dir}/b.log`, `${dir}/nested`],
    );
    assert.equal(top.find((f) => f.path === `${dir}/nested`)?.type, "directory");
    const deep = await sandbox.files.listDirectory({ path: dir, depth: 3 });
    assert.ok(deep.some((f) => f.path === `${dir}/nested/deeper/d.txt`));

    await assert.rejects(sandbox.files.getFileInfo([`${dir}/missing`]));
    await assert.rejects(sandbox.files.search({ path: `${dir}/missing`, pattern: "*" }));
    await assert.rejects(sandbox.files.readFile(`${dir}/missing`));
    // Deleting a missing file is not an error.
    await sandbox.files.deleteFiles([`${dir}/missing`]);
    // Moving onto an existing file fails; moving a missing file fails.
    await assert.rejects(sandbox.files.moveFiles([{ src: `${dir}/a.txt`, dest: `${dir}/b.log` }]));
    await assert.rejects(sandbox.files.moveFiles([{ src: `${dir}/missing`, dest: `${dir}/x` }]));
    // Moving into a new directory creates it.
    await sandbox.files.moveFiles([{ src: `${dir}/a.txt`, dest: `${dir}/new/dir/a.txt` }]);
    assert.equal(await sandbox.files.readFile(`${dir}/new/dir/a.txt`), "a");
    await sandbox.files.deleteDirectories([dir]);
    await assert.rejects(sandbox.files.getFileInfo([dir]));
  });

  test("directories with owner and group", T, async () => {
    const dir = `/tmp/owned_${Date.now()}/x/y`;
    await sandbox.files.createDirectories([{ path: dir, mode: 700, owner: "nobody", group: "nogroup" }]);
    const info = await sandbox.files.getFileInfo([dir]);
    assert.equal(info[dir].type, "directory");
    assert.equal(info[dir].mode, 700);
    assert.equal(info[dir].owner, "nobody");
    assert.equal(info[dir].group, "nogroup");
    const r = await sandbox.commands.run(`find ${dir} -maxdepth 0 -printf '%m %u %g\\n'`);
    assert.equal(r.logs.stdout[0]?.text, "700 nobody nogroup");
  });
});
