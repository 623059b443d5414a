/**
 * Loopback services with known weaknesses for the scanner tests; each listens on a random port of
 * 127.0.0.1 and is closed by its `close()`. Certificates are made with the openssl CLI.
 */
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { writeFileSync, readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import { Aedes } from "aedes";

export interface Fixture {
  port: number;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      server.close(() => resolve());
    });
}

/** A Telnet-like login that negotiates options and accepts admin/admin. */
export async function startTelnetFixture(): Promise<Fixture> {
  const sockets = new Set<import("node:net").Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    // IAC WILL ECHO, IAC WILL SGA, IAC DO NAWS (RFC 857, 858, 1073).
    socket.write(Buffer.from([255, 251, 1, 255, 251, 3, 255, 253, 31]));
    socket.write("\r\nIPCam-2000 login: ");
    let pending = "";
    let username: string | null = null;
    socket.on("data", (chunk: Buffer) => {
      // Drop the client's IAC answers (3 bytes each), keep the typed text.
      const bytes: number[] = [];
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] === 255) i += 2;
        else bytes.push(chunk[i]!);
      }
      pending += Buffer.from(bytes).toString("latin1");
      let newline: number;
      while ((newline = pending.search(/\r?\n|\r\0/)) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline).replace(/^(\r\n|\n|\r\0)/, "");
        if (username === null) {
          username = line;
          socket.write("Password: ");
        } else if (username === "admin" && line === "admin") {
          socket.write("\r\nWelcome to IPCam-2000\r\n# ");
        } else {
          socket.end("\r\nLogin incorrect\r\n");
        }
      }
    });
  });
  const port = await listen(server);
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return closer(server)();
    },
  };
}

/** An HTTP server behind Basic authentication that accepts admin:admin (RFC 7617). */
export async function startHttpBasicFixture(): Promise<Fixture> {
  const server = createHttpServer((request, response) => {
    const expected = `Basic ${Buffer.from("admin:admin").toString("base64")}`;
    if (request.headers.authorization === expected) {
      response.writeHead(200, { "content-type": "text/plain" }).end("camera settings");
    } else {
      response.writeHead(401, { "www-authenticate": 'Basic realm="IPCam"', "content-type": "text/plain" }).end("login required");
    }
  });
  const port = await listen(server);
  return { port, close: closer(server) };
}

/** An aedes broker; anonymous unless `login` is given, then only that login is accepted. */
export async function startAedesFixture(login?: { username: string; password: string }): Promise<Fixture & { publishRetained(topic: string): Promise<void> }> {
  const broker = await Aedes.createBroker(
    login
      ? {
          authenticate: (_client, username, password, done) => {
            if (username === login.username && password?.toString() === login.password) return done(null, true);
            done(Object.assign(new Error("bad login"), { returnCode: 4 as const }), false);
          },
        }
      : {},
  );
  const server = createNetServer((socket) => broker.handle(socket));
  const port = await listen(server);
  return {
    port,
    publishRetained: (topic) =>
      new Promise((resolve, reject) =>
        broker.publish({ cmd: "publish", topic, payload: Buffer.from("21.5"), qos: 0, retain: true, dup: false }, (error) => (error ? reject(error) : resolve())),
      ),
    close: async () => {
      await closer(server)();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** A CoAP server on UDP answering GET /.well-known/core in clear text (RFC 7252, RFC 6690). */
export async function startCoapFixture(): Promise<Fixture> {
  const socket = createSocket("udp4");
  socket.on("message", (message, remote) => {
    if (message.length < 4 || message[0]! >> 6 !== 1) return;
    const tokenLength = message[0]! & 0x0f;
    const token = message.subarray(4, 4 + tokenLength);
    // ACK (type 2), 2.05 Content, same message id and token, Content-Format 40 (link-format), payload.
    const header = Buffer.from([0x60 | tokenLength, 0x45, message[2]!, message[3]!]);
    const answer = Buffer.concat([header, token, Buffer.from([0xc1, 40, 0xff]), Buffer.from('</sensors/temp>;rt="temperature"')]);
    socket.send(answer, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

/** Certificates for the TLS fixtures, made with openssl in `dir`. */
export interface TestPki {
  caPem: string;
  /** ECDSA P-256 leaf for 127.0.0.1, signed by the CA, valid now. */
  good: { key: string; cert: string };
  /** Leaf signed by the CA whose validity ended in 2021. */
  expired: { key: string; cert: string };
  /** Self-signed RSA-1024 certificate for another name. */
  weak: { key: string; cert: string };
}

export function makeTestPki(dir: string): TestPki {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const path = (name: string) => join(dir, name);
  run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=Scanner Test CA");
  writeFileSync(path("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "good.key", "-out", "good.csr", "-subj", "/CN=localhost");
  run("x509", "-req", "-in", "good.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "good.pem", "-days", "30", "-extfile", "leaf.ext");
  // `openssl ca` is the CLI way to choose both validity dates (RFC 5280 §4.1.2.5).
  writeFileSync(path("index.txt"), "");
  writeFileSync(path("serial"), "1000\n");
  writeFileSync(
    path("ca.cnf"),
    [
      "[ca]",
      "default_ca = test_ca",
      "[test_ca]",
      `database = ${path("index.txt")}`,
      `new_certs_dir = ${dir}`,
      `serial = ${path("serial")}`,
      "default_md = sha256",
      "policy = any_name",
      "unique_subject = no",
      "[any_name]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired.localhost");
  run("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr", "-out", "expired.pem", "-notext", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-extfile", "leaf.ext");
  run("req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-out", "weak.pem", "-days", "30", "-subj", "/CN=wrong.example", "-addext", "subjectAltName=DNS:wrong.example");
  const read = (name: string) => readFileSync(path(name), "utf8");
  return {
    caPem: read("ca.pem"),
    good: { key: read("good.key"), cert: read("good.pem") },
    expired: { key: read("expired.key"), cert: read("expired.pem") },
    weak: { key: read("weak.key"), cert: read("weak.pem") },
  };
}

/** A TLS server answering HTTP/1.1 200 to whatever request arrives. */
export async function startTlsFixture(options: TlsOptions): Promise<Fixture> {
  const server = createTlsServer(options, (socket) => {
    socket.on("error", () => undefined);
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"));
  });
  server.on("tlsClientError", () => undefined);
  const port = await listen(server);
  return { port, close: closer(server) };
}
