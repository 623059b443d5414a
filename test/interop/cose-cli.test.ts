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
});
