import { readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../test/helpers/temp.js";
import { isMoatError } from "../errors.js";
import type { CheckpointRecord } from "./ports.js";
import { checkpointFromFile, fileWitness, httpWitness } from "./witness.js";

const record = (size: number): CheckpointRecord => ({ size, rootHash: Buffer.alloc(32, size), note: `o/moat-audit\n${size}\nroot\n\n\u2014 o/moat-audit sig\n`, createdAt: "2026-12-03T10:00:00.000Z" });
const proofFrom = async (oldSize: number) => (oldSize === 0 ? [] : [Buffer.alloc(32, oldSize), Buffer.alloc(32, 0xee)]);

function body(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => resolve(text));
  });
}

describe("checkpoint witnesses", () => {
  const closers: (() => void)[] = [];
  afterEach(() => closers.splice(0).forEach((close) => close()));

  it("appends one JSON line per checkpoint to an owner-only file, and reads the last one back", async () => {
    const dir = tempDir();
    closers.push(() => dir.cleanup());
    const path = join(dir.path, "witness.jsonl");
    const witness = fileWitness(path);
    await witness.publish(record(3), proofFrom);
    await witness.publish(record(5), proofFrom);
    const text = readFileSync(path, "utf8");
    expect(text.trim().split("\n").map((l) => JSON.parse(l).size)).toEqual([3, 5]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(checkpointFromFile(text)).toBe(record(5).note);
    expect(checkpointFromFile(record(5).note)).toBe(record(5).note);
    await expect(fileWitness(join(dir.path, "missing", "w.jsonl")).publish(record(1), proofFrom)).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_WITNESS_FAILED"));
  });

  it("posts the tlog-witness add-checkpoint body and retries once from the size a 409 names", async () => {
    const bodies: string[] = [];
    // A witness that already holds size 2: it takes a checkpoint only when the request starts at its size.
    let held = 2;
    const server = createServer(async (request, response) => {
      const text = await body(request);
      bodies.push(text);
      if (!text.startsWith(`old ${held}\n`)) {
        response.writeHead(409, { "content-type": "text/x.tlog.size" }).end(`${held}\n`);
        return;
      }
      held = Number(text.split("\n\n")[1]!.split("\n")[1]);
      response.writeHead(200).end("\u2014 witness.example cosig\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    const witness = httpWitness(`http://127.0.0.1:${(server.address() as AddressInfo).port}/add-checkpoint`);
    await witness.publish(record(7), proofFrom);
    expect(bodies[0]).toBe(`old 0\n\n${record(7).note}`);
    expect(bodies[1]).toBe(`old 2\n${Buffer.alloc(32, 2).toString("base64")}\n${Buffer.alloc(32, 0xee).toString("base64")}\n\n${record(7).note}`);
    // The next checkpoint starts from the size the witness accepted.
    bodies.length = 0;
    await witness.publish(record(9), proofFrom);
    expect(bodies.length).toBe(1);
    expect(bodies[0]!.startsWith("old 7\n")).toBe(true);
    // A witness ahead of this log (it saw a longer one) is a failure to report, not to paper over.
    held = 12;
    await expect(witness.publish(record(10), proofFrom)).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_WITNESS_FAILED"));
  });
});
