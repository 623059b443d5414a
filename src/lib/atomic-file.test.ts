import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../../test/helpers/temp.js";
import { copyFileAtomic, writeFileAtomic, writeFileAtomicSync } from "./atomic-file.js";

describe("atomic file replacement", () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());
  let n = 0;
  const fresh = () => {
    const folder = join(dir.path, `case-${++n}`);
    mkdirSync(folder);
    return folder;
  };

  const writers = {
    async: (path: string, data: string, mode?: number) => writeFileAtomic(path, data, mode === undefined ? {} : { mode }),
    sync: async (path: string, data: string, mode?: number) => writeFileAtomicSync(path, data, mode === undefined ? {} : { mode }),
  };

  for (const [name, write] of Object.entries(writers)) {
    it(`${name}: replaces the file whole, private by default, leaving no temporary file`, async () => {
      const folder = fresh();
      const target = join(folder, "state.json");
      writeFileSync(target, "old contents that are longer than the new ones");
      await write(target, "new");
      expect(readFileSync(target, "utf8")).toBe("new");
      expect(statSync(target).mode & 0o777).toBe(0o600);
      expect(readdirSync(folder)).toEqual(["state.json"]);
      await write(join(folder, "public.txt"), "x", 0o644);
      expect(statSync(join(folder, "public.txt")).mode & 0o777).toBe(0o644);
    });

    it(`${name}: a failed rename keeps the old file and removes the temporary one`, async () => {
      const folder = fresh();
      const target = join(folder, "taken");
      mkdirSync(target);
      writeFileSync(join(target, "inside"), "kept");
      await expect(write(target, "new")).rejects.toThrow();
      expect(readdirSync(folder)).toEqual(["taken"]);
      expect(readFileSync(join(target, "inside"), "utf8")).toBe("kept");
    });

    it(`${name}: a missing folder is an error, not a silent success`, async () => {
      await expect(write(join(dir.path, "no-such-folder", "f"), "x")).rejects.toMatchObject({ code: "ENOENT" });
    });
  }

  it("with replace: false, refuses an existing file and leaves it untouched", async () => {
    const folder = fresh();
    const target = join(folder, "kek.key");
    writeFileAtomicSync(target, "first", { replace: false });
    expect(() => writeFileAtomicSync(target, "second", { replace: false })).toThrow(expect.objectContaining({ code: "EEXIST" }));
    await expect(writeFileAtomic(target, "third", { replace: false })).rejects.toMatchObject({ code: "EEXIST" });
    expect(readFileSync(target, "utf8")).toBe("first");
    expect(readdirSync(folder)).toEqual(["kek.key"]);
  });

  it("copies a file atomically with the requested mode", async () => {
    const folder = fresh();
    const source = join(folder, "image.bin");
    writeFileSync(source, Buffer.alloc(70_000, 7), { mode: 0o644 });
    const target = join(folder, "copy.bin");
    await copyFileAtomic(source, target, { mode: 0o644 });
    expect(readFileSync(target).equals(readFileSync(source))).toBe(true);
    expect(statSync(target).mode & 0o777).toBe(0o644);
    expect(readdirSync(folder).sort()).toEqual(["copy.bin", "image.bin"]);
    await copyFileAtomic(source, target);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    await expect(copyFileAtomic(join(folder, "absent"), join(folder, "c2"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(readdirSync(folder).sort()).toEqual(["copy.bin", "image.bin"]);
  });
});
