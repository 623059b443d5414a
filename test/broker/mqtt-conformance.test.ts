/**
 * MQTT 3.1.1 conformance points checked byte by byte with a raw TLS client (no MQTT library between
 * the test and the broker): Session Present on reconnect [MQTT-3.2.2-2], U+0000 in a topic
 * [MQTT-1.5.3-2], and the disconnect cause recorded when the broker ends a session.
 */
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { startTestBroker, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");

function utf8(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

function packet(type: number, body: Buffer): Buffer {
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...length]), body]);
}

const connectPacket = (clientId: string, clean: boolean) => packet(0x10, Buffer.concat([utf8("MQTT"), Buffer.from([0x04, clean ? 0x02 : 0x00, 0x00, 0x3c]), utf8(clientId)]));
const publishPacket = (topic: string, payload: string) => packet(0x30, Buffer.concat([utf8(topic), Buffer.from(payload)]));
const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** A TLS connection that collects every byte the broker sends and notes when the broker closes it. */
class RawClient {
  received = Buffer.alloc(0);
  closed: Promise<void>;
  private constructor(readonly socket: TLSSocket) {
    socket.on("data", (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static open(port: number, pki: TestPki, cert: IssuedCert): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port, ca: pki.chainPem, cert: cert.certPem, key: cert.keyPem, servername: "localhost" }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Waits until at least `count` bytes have arrived (or the connection closed) and returns them. */
  async bytes(count: number): Promise<Buffer> {
    for (let i = 0; i < 200 && this.received.length < count && !this.socket.destroyed; i++) await new Promise((r) => setTimeout(r, 25));
    return this.received.subarray(0, count);
  }

  async session(clientId: string, clean: boolean): Promise<Buffer> {
    this.socket.write(connectPacket(clientId, clean));
    return this.bytes(4);
  }

  async end(): Promise<void> {
    this.socket.end(DISCONNECT);
    await this.closed;
  }
}

describe.skipIf(!ok)("broker: MQTT 3.1.1 conformance with a raw client", () => {
  const tmp = tempDir("moat-broker-raw-");
  let pki: TestPki;
  let tb: TestBroker;
  const certs = new Map<string, IssuedCert>();
  const open = (id: string) => RawClient.open(tb.port, pki, certs.get(id)!);

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    tb = await startTestBroker(pki, { authFailureLimit: 1000, maxPublishDenials: 2 });
    for (const id of ["s1", "s2", "n1", "n2", "sys1", "deny1"]) {
      const cert = pki.device(id);
      certs.set(id, cert);
      tb.directory.put({ id, certSerials: [cert.serial] });
      tb.policy.assign("device", "device", id);
    }
  });
  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  const disconnectReason = async (id: string) => (await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === id)).data?.reason;

  it("answers Session Present 1 when a CleanSession=0 client returns to its stored session without subscriptions [MQTT-3.2.2-2]", async () => {
    const first = await open("s1");
    expect([...(await first.session("s1", false))]).toEqual([0x20, 0x02, 0x00, 0x00]); // no session existed yet
    await first.end();
    await disconnectReason("s1");

    const again = await open("s1");
    expect([...(await again.session("s1", false))]).toEqual([0x20, 0x02, 0x01, 0x00]);
    await again.end();
  });

  it("answers Session Present 0 after a CleanSession=1 connect discarded the session [MQTT-3.2.2-1]", async () => {
    const persistent = await open("s2");
    expect([...(await persistent.session("s2", false))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    await persistent.end();
    const clean = await open("s2");
    expect([...(await clean.session("s2", true))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    await clean.end();
    const after = await open("s2");
    expect([...(await after.session("s2", false))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    await after.end();
  });

  it("closes the connection when a PUBLISH topic holds U+0000 [MQTT-1.5.3-2] and says why", async () => {
    const client = await open("n1");
    expect([...(await client.session("n1", true))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    client.socket.write(publishPacket("devices/n1/telemetry\u0000x", "1"));
    await client.closed;
    expect(await disconnectReason("n1")).toBe("malformed_topic");
  });

  it("closes the connection when a SUBSCRIBE filter holds U+0000 [MQTT-1.5.3-2]", async () => {
    const client = await open("n2");
    await client.session("n2", true);
    client.socket.write(packet(0x82, Buffer.concat([Buffer.from([0x00, 0x01]), utf8("devices/n2/\u0000/#"), Buffer.from([0x00])])));
    await client.closed;
    expect(await disconnectReason("n2")).toBe("malformed_topic");
  });

  it("records reserved_topic, not client, when a $SYS publish ends the session", async () => {
    const client = await open("sys1");
    await client.session("sys1", true);
    client.socket.write(publishPacket("$SYS/broker/uptime", "forged"));
    await client.closed;
    expect(await disconnectReason("sys1")).toBe("reserved_topic");
  });

  it("records publish_denied, not client, when denied publishes end the session", async () => {
    const client = await open("deny1");
    await client.session("deny1", true);
    client.socket.write(Buffer.concat([publishPacket("devices/s1/commands/open", "x"), publishPacket("devices/s1/commands/open", "x")]));
    await client.closed;
    expect(await disconnectReason("deny1")).toBe("publish_denied");
  });
});
