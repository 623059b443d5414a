import { execFile } from "node:child_process";
import { createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScan, socketConnector, defaultTransport } from "../../src/scanner/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { nmapOpenPorts } from "./nmap-output.js";

const run = promisify(execFile);
const hasNmap = requireCommand("nmap", "nmap");

/**
 * A 100-port window below the kernel's ephemeral range (32768+), so other tests' client sockets
 * do not come and go inside it between the two scans, with three listeners of our own in it.
 */
async function listenInWindow(): Promise<{ base: number; servers: Server[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 100);
    const servers: Server[] = [];
    try {
      for (const offset of [7, 42, 93]) {
        const server = createServer((socket) => socket.destroy());
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(base + offset, "127.0.0.1", resolve);
        });
        servers.push(server);
      }
      return { base, servers };
    } catch {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  }
  throw new Error("no free 100-port window found");
}

describe.skipIf(!hasNmap)("open ports agree with nmap -sT", () => {
  let window: { base: number; servers: Server[] };
  beforeAll(async () => {
    window = await listenInWindow();
  });
  afterAll(async () => {
    await Promise.all(window.servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it("finds the same open ports on 127.0.0.1 as nmap, with both connectors", async () => {
    const range = `${window.base}-${window.base + 99}`;
    const { stdout } = await run("nmap", ["-sT", "-n", "-Pn", "-T4", "-p", range, "-oG", "-", "127.0.0.1"]);
    const nmap = nmapOpenPorts(stdout);
    expect(nmap).toEqual(expect.arrayContaining([window.base + 7, window.base + 42, window.base + 93]));
    for (const connector of [defaultTransport().connector, socketConnector]) {
      const result = await runScan({ targets: ["127.0.0.1"], ports: range, detectServices: false, transport: { ...defaultTransport(), connector } });
      expect([connector.kind, result.hosts[0]!.ports.map((p) => p.port)]).toEqual([connector.kind, nmap]);
    }
  });
});
