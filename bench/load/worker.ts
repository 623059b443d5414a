/**
 * A load generator worker: one child process holding many MQTT-over-TLS connections for its slice of
 * the devices, driven over the IPC channel by generator.ts. Each operation reports the CPU time this
 * process spent, so a reader can tell whether the generator, not the broker, was the limit.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createSecureContext, type SecureContext } from "node:tls";
import { ConnectRefused, LoadConnection } from "./connection.js";
import { EstClient, prepareDevice } from "./est.js";
import { PublishTemplate } from "./frames.js";
import type { CredentialsFile, OpName, WorkerOps, WorkerReply, WorkerRequest } from "./protocol.js";

interface Device {
  id: string;
  context: () => SecureContext;
}

let devices: Device[] = [];
/** Held connections per broker port, by device id (the same devices may be held on two brokers at once). */
const heldByPort = new Map<number, Map<string, LoadConnection>>();
function heldOn(port: number): Map<string, LoadConnection> {
  let held = heldByPort.get(port);
  if (!held) heldByPort.set(port, (held = new Map()));
  return held;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function errorKey(error: unknown): string {
  if (error instanceof ConnectRefused) return `CONNACK ${error.code}`;
  const e = error as NodeJS.ErrnoException;
  return e.code ?? e.message?.slice(0, 60) ?? String(error);
}

/** Runs `work` for each item with at most `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ops: { [K in OpName]: (args: WorkerOps[K]["args"]) => Promise<WorkerOps[K]["result"]> } = {
  init: async ({ credentialsFile, from, to }) => {
    const file = JSON.parse(readFileSync(credentialsFile, "utf8")) as CredentialsFile;
    devices = file.devices.slice(from, to).map((d) => {
      let context: SecureContext | null = null;
      // Built on first use: parsing thousands of keys up front would only delay the first operation.
      return { id: d.id, context: () => (context ??= createSecureContext({ ca: file.caPem, cert: d.certPem, key: d.keyPem ?? file.sharedKeyPem!, minVersion: "TLSv1.2" })) };
    });
    return { devices: devices.length };
  },

  "connect-rate": async ({ target, count, concurrency }) => {
    const errors: Record<string, number> = {};
    let ok = 0;
    let failed = 0;
    let negotiated: string | null = null;
    const picks = Array.from({ length: count }, (_, i) => devices[i % devices.length]!);
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await pool(picks, concurrency, async (device) => {
      try {
        const conn = await LoadConnection.open(target, device.context(), device.id);
        negotiated ??= `${conn.socket.getProtocol()} ${conn.socket.getCipher().name}`;
        ok++;
        void conn.end();
      } catch (error) {
        failed++;
        errors[errorKey(error)] = (errors[errorKey(error)] ?? 0) + 1;
      }
    });
    return { ok, failed, errors, negotiated, wallMs: performance.now() - t0, cpuMs: cpuMsSince(cpu) };
  },

  hold: async ({ target, concurrency, timeoutMs, keepaliveSeconds, limit }) => {
    const errors: Record<string, number> = {};
    const connackMs: number[] = [];
    const held = heldOn(target.port);
    let failed = 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await pool(
      devices.slice(0, limit ?? devices.length).filter((d) => !held.has(d.id)),
      concurrency,
      async (device) => {
        try {
          const conn = await LoadConnection.open(target, device.context(), device.id, { timeoutMs, keepaliveSeconds });
          connackMs.push(performance.now() - t0);
          held.set(device.id, conn);
          conn.socket.on("error", () => undefined);
          void conn.closed.then(() => held.get(device.id) === conn && held.delete(device.id));
        } catch (error) {
          failed++;
          errors[errorKey(error)] = (errors[errorKey(error)] ?? 0) + 1;
        }
      },
    );
    return { open: held.size, failed, errors, connackMs, wallMs: performance.now() - t0, cpuMs: cpuMsSince(cpu) };
  },

  release: async ({ port }) => {
    const held = heldOn(port);
    const all = [...held.values()];
    held.clear();
    await Promise.all(all.map((c) => c.end()));
    return { closed: all.length };
  },

  drop: async ({ port }) => {
    const held = heldOn(port);
    const all = [...held.values()];
    held.clear();
    for (const c of all) c.drop();
    await Promise.all(all.map((c) => c.closed));
    return { dropped: all.length };
  },

  flow: async ({ target, pairs, qos, warmupMs, windowMs, inflight, payloadBytes }) => {
    if (devices.length < 2 * pairs) throw new Error(`flow needs ${2 * pairs} devices, this worker has ${devices.length}`);
    const pubs = devices.slice(0, pairs);
    const subs = devices.slice(pairs, 2 * pairs);
    const payload = Buffer.alloc(payloadBytes, 0x61);
    const subscribers = await Promise.all(subs.map((d) => LoadConnection.open(target, d.context(), d.id)));
    const codes = await Promise.all(subscribers.map((s, i) => s.subscribe(`devices/${pubs[i]!.id}/telemetry/#`, qos)));
    const publishers = await Promise.all(pubs.map((d) => LoadConnection.open(target, d.context(), d.id)));
    let running = true;
    let counting = false;
    let published = 0;
    for (const [i, conn] of publishers.entries()) {
      const template = new PublishTemplate(`devices/${pubs[i]!.id}/telemetry/load`, payload, qos, target.version);
      const batch = (n: number) => {
        const out = Buffer.allocUnsafe(template.length * n);
        let offset = 0;
        for (let k = 0; k < n; k++) offset = template.writeInto(out, offset, conn.takePacketId());
        return out;
      };
      conn.socket.on("error", () => undefined);
      if (qos === 1) {
        // A window of `inflight` unacknowledged PUBLISHes: every PUBACK in a chunk is refilled in one write.
        let owed = 0;
        conn.onPuback = () => {
          if (counting) published++;
          owed++;
        };
        conn.onChunkEnd = () => {
          if (running && owed > 0 && !conn.socket.destroyed) conn.socket.write(batch(owed));
          owed = 0;
        };
        conn.socket.write(batch(inflight));
      } else {
        // QoS 0 has no acknowledgement: batches of `inflight` as fast as the socket drains.
        const block = batch(inflight);
        const pump = () => {
          while (running && !conn.socket.destroyed) {
            if (counting) published += inflight;
            if (!conn.socket.write(block)) return void conn.socket.once("drain", pump);
            // Yield now and then so replies and timers are handled.
            if (conn.socket.writableLength > 0) return void setImmediate(pump);
          }
        };
        pump();
      }
    }
    await sleep(warmupMs);
    const baseline = subscribers.reduce((n, s) => n + s.received, 0);
    counting = true;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await sleep(windowMs);
    counting = false;
    const elapsed = performance.now() - t0;
    const cpuMs = cpuMsSince(cpu);
    const delivered = subscribers.reduce((n, s) => n + s.received, 0) - baseline;
    running = false;
    await Promise.all([...publishers, ...subscribers].map((c) => c.end()));
    return { published, delivered, windowMs: elapsed, wallMs: elapsed, cpuMs, subscribeRefused: codes.filter((c) => c >= 0x80).length };
  },

  telemetry: async ({ port, qos, intervalMs, durationMs, payloadBytes }) => {
    const held = heldOn(port);
    const payload = Buffer.alloc(payloadBytes, 0x62);
    const latencyMs: number[] = [];
    let sent = 0;
    let acked = 0;
    let closed = 0;
    const timers: NodeJS.Timeout[] = [];
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    for (const conn of held.values()) {
      const template = new PublishTemplate(`devices/${conn.clientId}/telemetry/t`, payload, qos, conn.version);
      const sentAt = new Map<number, number>();
      conn.onPuback = (id) => {
        const at = sentAt.get(id);
        if (at === undefined) return;
        sentAt.delete(id);
        acked++;
        latencyMs.push(performance.now() - at);
      };
      void conn.closed.then(() => closed++);
      const send = () => {
        if (conn.socket.destroyed) return;
        const id = conn.takePacketId();
        const out = Buffer.allocUnsafe(template.length);
        template.writeInto(out, 0, id);
        if (qos === 1) sentAt.set(id, performance.now());
        conn.socket.write(out);
        sent++;
      };
      // Each device starts at a random phase, so the load is steady rather than a burst per interval.
      timers.push(
        setTimeout(() => {
          send();
          timers.push(setInterval(send, intervalMs));
        }, Math.random() * intervalMs),
      );
    }
    await sleep(durationMs);
    for (const t of timers) clearTimeout(t);
    // Late acknowledgements still count for a moment; messages never acknowledged stay unacked.
    await sleep(Math.min(2000, intervalMs));
    for (const conn of held.values()) conn.onPuback = null;
    return { sent, acked, latencyMs, closed, wallMs: performance.now() - t0, cpuMs: cpuMsSince(cpu) };
  },

  enroll: async ({ apiPort, caPem, devices: toEnroll, concurrency }) => {
    const prepared = await Promise.all(toEnroll.map((d) => prepareDevice(d.id, d.token)));
    const client = new EstClient(apiPort, caPem, concurrency);
    const errors: Record<string, number> = {};
    const latencyMs: number[] = [];
    const credentials: { id: string; certPem: string; keyPem: string }[] = [];
    let failed = 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await pool(prepared, concurrency, async (device) => {
      const started = performance.now();
      try {
        const certPem = await client.enroll(device);
        latencyMs.push(performance.now() - started);
        credentials.push({ id: device.id, certPem, keyPem: device.keyPem });
      } catch (error) {
        failed++;
        errors[errorKey(error)] = (errors[errorKey(error)] ?? 0) + 1;
      }
    });
    const wallMs = performance.now() - t0;
    const cpuMs = cpuMsSince(cpu);
    client.close();
    return { ok: credentials.length, failed, errors, latencyMs, credentials, wallMs, cpuMs };
  },
};

process.on("message", (request: WorkerRequest) => {
  const run = ops[request.op] as (args: unknown) => Promise<unknown>;
  run(request.args).then(
    (result) => process.send!({ id: request.id, result } satisfies WorkerReply),
    (error: Error) => process.send!({ id: request.id, error: error.stack ?? String(error) } satisfies WorkerReply),
  );
});
// The generator stops a worker by closing the IPC channel: drop the connections and let the loop drain.
process.on("disconnect", () => {
  for (const held of heldByPort.values()) for (const c of held.values()) c.drop();
  heldByPort.clear();
});
process.send!({ id: 0, result: "ready" } satisfies WorkerReply);
