import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

const coseJs = createRequire(import.meta.url)("cose-js") as {
  encrypt: { read(message: Buffer, key: Buffer, options?: { externalAAD?: Buffer }): Promise<Buffer> };
};
const ok = (result: CliResult) => {
  if (result.code !== 0) throw new Error(`moat exited ${result.code}: ${result.stderr}`);
  return result;
};

describe("moat e2e keygen | encrypt | decrypt", () => {
  const dir = tempDir("moat-e2e-cli-");
  const at = (name: string) => join(dir.path, name);
  afterAll(() => dir.cleanup());

  it("derives the same key on both sides from the key files and opens only on the sealed topic", async () => {
    ok(await runCli(["e2e", "keygen", "--out", at("dev-7"), "--curve", "p256"]));
    ok(await runCli(["e2e", "keygen", "--out", at("historian")]));
    expect(statSync(at("dev-7.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(at("historian.pub"), "utf8")).toContain("BEGIN PUBLIC KEY");
    // Different curves cannot agree.
    const mixed = await runCli(["e2e", "encrypt", "--key", at("dev-7.key"), "--peer", at("historian.pub"), "--device", "dev-7", "--app", "historian", "--kid", "dev-7/1", "--topic", "t", "--in", at("dev-7.pub"), "--out", at("x.cose")]);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain("CRYPTO_KEY_INVALID");

    ok(await runCli(["e2e", "keygen", "--out", at("dev-8"), "--curve", "x25519"]));
    writeFileSync(at("reading.json"), '{"temperature":21.5,"secret":"7YQ-33"}');
    const topic = "fleet/dev-8/telemetry";
    const derive = (key: string, peer: string) => ["--key", at(key), "--peer", at(peer), "--device", "dev-8", "--app", "historian", "--kid", "dev-8/1"];
    const sealed = JSON.parse(ok(await runCli(["e2e", "encrypt", ...derive("dev-8.key", "historian.pub"), "--topic", topic, "--seq", "42", "--in", at("reading.json"), "--out", at("reading.cose"), "--json"])).stdout);
    expect(sealed).toMatchObject({ kid: "dev-8/1", seq: 42, topic });
    expect(readFileSync(at("reading.cose")).includes(Buffer.from("7YQ-33"))).toBe(false);

    const opened = JSON.parse(ok(await runCli(["e2e", "decrypt", ...derive("historian.key", "dev-8.pub"), "--topic", topic, "--in", at("reading.cose"), "--out", at("out.json"), "--json"])).stdout);
    expect(opened).toMatchObject({ seq: 42 });
    expect(readFileSync(at("out.json"), "utf8")).toBe('{"temperature":21.5,"secret":"7YQ-33"}');

    const moved = await runCli(["e2e", "decrypt", ...derive("historian.key", "dev-8.pub"), "--topic", "fleet/dev-9/telemetry", "--in", at("reading.cose"), "--out", at("out2.json")]);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain("COSE_TOPIC_MISMATCH");
    const wrongKid = await runCli(["e2e", "decrypt", "--key", at("historian.key"), "--peer", at("dev-8.pub"), "--device", "dev-8", "--app", "historian", "--kid", "dev-8/2", "--topic", topic, "--in", at("reading.cose"), "--out", at("out3.json")]);
    expect(wrongKid.stderr).toContain("COSE_KID_UNKNOWN");
  });

  it("seals with a provisioned content key that cose-js opens, and refuses a key file others can read", async () => {
    const key = randomBytes(32);
    writeFileSync(at("content.key"), key.toString("base64") + "\n", { mode: 0o600 });
    writeFileSync(at("cmd.bin"), randomBytes(300));
    ok(await runCli(["e2e", "encrypt", "--content-key", at("content.key"), "--kid", "ops/1", "--topic", "fleet/dev-1/cmd", "--in", at("cmd.bin"), "--out", at("cmd.cose")]));
    const plaintext = await coseJs.encrypt.read(readFileSync(at("cmd.cose")), key, { externalAAD: Buffer.from("fleet/dev-1/cmd") });
    expect(Buffer.from(plaintext).equals(readFileSync(at("cmd.bin")))).toBe(true);

    chmodSync(at("content.key"), 0o644);
    const exposed = await runCli(["e2e", "decrypt", "--content-key", at("content.key"), "--kid", "ops/1", "--topic", "fleet/dev-1/cmd", "--in", at("cmd.cose"), "--out", at("cmd.out")]);
    expect(exposed.code).toBe(1);
    expect(exposed.stderr).toMatch(/CRYPTO_KEY_INVALID.*mode 644/);
  });

  it("decrypt refuses untagged messages and messages without a sequence number, and remembers what it opened across runs", async () => {
    const key = randomBytes(32);
    writeFileSync(at("replay.key"), key.toString("base64") + "\n", { mode: 0o600 });
    const topic = "fleet/dev-2/telemetry";
    const base = ["--content-key", at("replay.key"), "--kid", "dev-2/1", "--topic", topic];
    writeFileSync(at("r.txt"), "reading");
    ok(await runCli(["e2e", "encrypt", ...base, "--seq", "7", "--in", at("r.txt"), "--out", at("r7.cose")]));

    // The same message without its CBOR tag (tag 16 is the first byte, 0xd0).
    const tagged = readFileSync(at("r7.cose"));
    expect(tagged[0]).toBe(0xd0);
    writeFileSync(at("untagged.cose"), tagged.subarray(1));
    const untagged = await runCli(["e2e", "decrypt", ...base, "--in", at("untagged.cose"), "--out", at("u.out")]);
    expect(untagged.code).toBe(1);
    expect(untagged.stderr).toMatch(/COSE_MALFORMED.*untagged/);

    // A cose-js message carries no sequence number: it cannot be checked for replay, so it is refused.
    const coseJsEncrypt = createRequire(import.meta.url)("cose-js").encrypt as { create(h: object, p: Buffer, r: { key: Buffer }, o: object): Promise<Buffer> };
    writeFileSync(at("noseq.cose"), await coseJsEncrypt.create({ p: { alg: "A256GCM" }, u: { kid: "dev-2/1" } }, Buffer.from("x"), { key }, { externalAAD: Buffer.from(topic) }));
    const noSeq = await runCli(["e2e", "decrypt", ...base, "--in", at("noseq.cose"), "--out", at("n.out")]);
    expect(noSeq.code).toBe(1);
    expect(noSeq.stderr).toContain("COSE_SEQUENCE_MISSING");

    // Opened once; the same message in a later run (a new process) is a replay, and nothing is written.
    const first = JSON.parse(ok(await runCli(["e2e", "decrypt", ...base, "--in", at("r7.cose"), "--out", at("r7.out"), "--json"])).stdout);
    expect(first).toMatchObject({ seq: 7, replayState: `${at("replay.key")}.replay.json` });
    expect(statSync(`${at("replay.key")}.replay.json`).mode & 0o777).toBe(0o600);
    const replayed = await runCli(["e2e", "decrypt", ...base, "--in", at("r7.cose"), "--out", at("r7-again.out")]);
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain("COSE_REPLAYED");
    expect(() => statSync(at("r7-again.out"))).toThrow();
    // A newer number still opens; with another state file the window starts empty (as documented).
    ok(await runCli(["e2e", "encrypt", ...base, "--seq", "8", "--in", at("r.txt"), "--out", at("r8.cose")]));
    ok(await runCli(["e2e", "decrypt", ...base, "--in", at("r8.cose"), "--out", at("r8.out")]));
    ok(await runCli(["e2e", "decrypt", ...base, "--replay-state", at("other.json"), "--in", at("r7.cose"), "--out", at("r7-other.out")]));
    // A damaged state file stops the command instead of silently starting over.
    writeFileSync(at("broken.json"), "{}", { mode: 0o600 });
    const broken = await runCli(["e2e", "decrypt", ...base, "--replay-state", at("broken.json"), "--in", at("r8.cose"), "--out", at("b.out")]);
    expect(broken.stderr).toContain("COSE_REPLAY_STATE_INVALID");
  });
});
