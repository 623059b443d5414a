import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { decrypt0, deriveDeviceKey, encrypt0, generateAgreementKeyPair, ReplayGuard, type AgreementCurve, type ReplayWindowState } from "../../crypto/index.js";
import { MoatError } from "../../errors.js";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import { printJson } from "../output.js";
import { readInputFile, writeOutputFile } from "./data.js";

/** Largest payload the E2E commands handle (MQTT payloads are far smaller). */
const MAX_PAYLOAD = 16 * 1024 * 1024;

function parseCurve(text: string): AgreementCurve {
  const curve = text.toLowerCase();
  if (curve === "p256" || curve === "p-256") return "P-256";
  if (curve === "x25519") return "X25519";
  throw new InvalidArgumentError(`'${text}' is not p256 or x25519`);
}

function parseSequence(text: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError(`'${text}' is not a sequence number below 2^53`);
  return Number(text);
}

/** Reads a secret file, refusing one that group or others can read. */
function readSecretFile(path: string, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw new MoatError("CRYPTO_KEY_INVALID", `cannot read the ${what} ${path}`, { cause: error });
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) throw new MoatError("CRYPTO_KEY_INVALID", `the ${what} ${path} has mode ${mode.toString(8)}; it must be 600 (chmod 600 ${path})`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function loadPrivateKey(path: string): KeyObject {
  try {
    return createPrivateKey(readSecretFile(path, "private key"));
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("CRYPTO_KEY_INVALID", `${path} is not a PEM private key`, { cause: error });
  }
}

function loadPublicKey(path: string): KeyObject {
  try {
    return createPublicKey(readFileSync(path));
  } catch (error) {
    throw new MoatError("CRYPTO_KEY_INVALID", `${path} is not a PEM public key`, { cause: error });
  }
}

const REPLAY_STATE_VERSION = 1;

/**
 * The receiver's replay windows, kept in a JSON file (mode 600) so that a message accepted once is
 * refused by every later run: `{"version": 1, "windows": {"<kid hex>": {size, highest, blocks}}}`.
 * A missing file is an empty state (the first run); an unreadable one stops the command.
 */
function loadReplayState(path: string): ReplayGuard {
  if (!existsSync(path)) return new ReplayGuard();
  try {
    const state = JSON.parse(readSecretFile(path, "replay state").toString("utf8")) as { version?: unknown; windows?: unknown };
    if (state.version !== REPLAY_STATE_VERSION || typeof state.windows !== "object" || state.windows === null) throw new Error("not a version 1 replay state");
    return ReplayGuard.restore(state.windows as Record<string, ReplayWindowState>);
  } catch (error) {
    if (error instanceof MoatError && error.code !== "CRYPTO_KEY_INVALID") throw error;
    throw new MoatError("COSE_REPLAY_STATE_INVALID", `cannot use the replay state ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function saveReplayState(path: string, replay: ReplayGuard): void {
  writeFileAtomicSync(path, Buffer.from(JSON.stringify({ version: REPLAY_STATE_VERSION, windows: replay.snapshot() })), { replace: true, mode: 0o600 });
}

interface KeyOptions {
  contentKey?: string;
  key?: string;
  peer?: string;
  device?: string;
  app?: string;
  kid: string;
}

/** The A256GCM content key: provisioned (a file with base64 of 32 bytes) or derived by ECDH + HKDF. */
function contentKey(o: KeyOptions): Buffer {
  if (o.contentKey) {
    const key = Buffer.from(readSecretFile(o.contentKey, "content key").toString("utf8").trim(), "base64");
    if (key.length !== 32) throw new MoatError("CRYPTO_KEY_INVALID", `the content key in ${o.contentKey} is ${key.length} bytes; it must be base64 of 32 bytes`);
    return key;
  }
  if (!o.key || !o.peer || !o.device || !o.app) throw new MoatError("VALIDATION_FAILED", "give --content-key, or --key, --peer, --device and --app to derive the key");
  return deriveDeviceKey({ privateKey: loadPrivateKey(o.key), peerPublicKey: loadPublicKey(o.peer), deviceId: o.device, applicationId: o.app, kid: o.kid });
}

function addKeyOptions(command: Command): Command {
  return command
    .requiredOption("--kid <id>", "key id (label 4); a new kid is a new key generation")
    .option("--content-key <file>", "provisioned A256GCM key: base64 of 32 bytes, mode 600")
    .option("--key <file>", "this party's agreement private key (PEM, mode 600)")
    .option("--peer <file>", "the other party's agreement public key (PEM)")
    .option("--device <id>", "device id (PartyU identity of the key derivation)")
    .option("--app <id>", "application id (PartyV identity)");
}

/** `moat e2e …`: end-to-end payload encryption (COSE_Encrypt0) for operators. */
export function register(program: Command): void {
  const e2e = program.command("e2e").description("end-to-end payload encryption with COSE_Encrypt0 (the broker only sees ciphertext)");

  e2e
    .command("keygen")
    .description("generate an agreement key pair: <prefix>.key (PKCS#8 PEM, mode 600) and <prefix>.pub")
    .requiredOption("--out <prefix>", "output path prefix")
    .option("--curve <curve>", "p256 or x25519", parseCurve, "X25519" as AgreementCurve)
    .option("--force", "replace existing files")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat e2e keygen --out historian --curve x25519\n")
    .action((o: { out: string; curve: AgreementCurve; force?: boolean; json?: boolean }) => {
      const pair = generateAgreementKeyPair(o.curve);
      const publicPem = pair.publicKey.export({ format: "pem", type: "spki" }).toString();
      writeOutputFile(`${o.out}.key`, Buffer.from(pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString()), o.force);
      writeOutputFile(`${o.out}.pub`, Buffer.from(publicPem), o.force);
      if (o.json) printJson({ privateKey: `${o.out}.key`, publicKey: `${o.out}.pub`, curve: o.curve });
      else process.stderr.write(`wrote ${o.out}.key (keep secret) and ${o.out}.pub (${o.curve})\n`);
    });

  addKeyOptions(
    e2e
      .command("encrypt")
      .description("seal a payload as COSE_Encrypt0 (A256GCM) bound to an MQTT topic")
      .requiredOption("--topic <topic>", "MQTT topic (external AAD): the message opens only on this topic")
      .requiredOption("--in <file>", "payload")
      .requiredOption("--out <file>", "COSE message")
      .option("--seq <n>", "sequence number (default: microseconds since 1970, so numbers keep rising)", parseSequence)
      .option("--force", "replace an existing output file")
      .option("--json", "print JSON")
      .addHelpText("after", "\nExample:\n  moat e2e encrypt --key dev-7.key --peer historian.pub --device dev-7 --app historian --kid dev-7/1 \\\n    --topic fleet/dev-7/telemetry --in reading.json --out reading.cose\n"),
  ).action((o: KeyOptions & { topic: string; in: string; out: string; seq?: number; force?: boolean; json?: boolean }) => {
    const key = contentKey(o);
    const seq = o.seq ?? Date.now() * 1000;
    const message = encrypt0(readInputFile(o.in, MAX_PAYLOAD), { key, kid: o.kid, seq, externalAad: o.topic });
    key.fill(0);
    writeOutputFile(o.out, message, o.force);
    if (o.json) printJson({ out: o.out, kid: o.kid, seq, topic: o.topic, bytes: message.length });
    else process.stderr.write(`sealed ${o.in} → ${o.out} (kid ${o.kid}, seq ${seq}, topic ${o.topic})\n`);
  });

  addKeyOptions(
    e2e
      .command("decrypt")
      .description("open a COSE_Encrypt0 message received on an MQTT topic")
      .requiredOption("--topic <topic>", "the topic the message arrived on")
      .requiredOption("--in <file>", "COSE message")
      .requiredOption("--out <file>", "payload (mode 600)")
      .option("--replay-state <file>", "where the replay window is kept between runs (default: the key file's path + .replay.json)")
      .option("--force", "replace an existing output file")
      .option("--json", "print JSON")
      .addHelpText("after", "\nExample:\n  moat e2e decrypt --key historian.key --peer dev-7.pub --device dev-7 --app historian --kid dev-7/1 \\\n    --topic fleet/dev-7/telemetry --in reading.cose --out reading.json\n"),
  ).action((o: KeyOptions & { topic: string; in: string; out: string; replayState?: string; force?: boolean; json?: boolean }) => {
    const statePath = o.replayState ?? `${o.contentKey ?? o.key ?? "moat-e2e"}.replay.json`;
    const replay = loadReplayState(statePath);
    if (!o.force && existsSync(o.out)) throw new MoatError("VALIDATION_FAILED", `${o.out} exists; pass --force to replace it`);
    const key = contentKey(o);
    const kid = Buffer.from(o.kid, "utf8");
    let opened: ReturnType<typeof decrypt0>;
    try {
      // Tagged messages with a sequence number only; the window is advanced only after the tag verifies.
      opened = decrypt0(readInputFile(o.in, MAX_PAYLOAD + 1024), { keys: { get: (k) => (Buffer.from(k).equals(kid) ? key : undefined) }, externalAad: o.topic, replay, requireSequence: true });
    } finally {
      key.fill(0);
    }
    // Recorded before the plaintext is written: a message is never opened twice, even after a crash.
    saveReplayState(statePath, replay);
    writeOutputFile(o.out, opened.plaintext, o.force);
    if (o.json) printJson({ out: o.out, kid: o.kid, seq: opened.seq ?? null, topic: o.topic, bytes: opened.plaintext.length, replayState: statePath });
    else process.stderr.write(`opened ${o.in} → ${o.out} (kid ${o.kid}, seq ${opened.seq ?? "none"})\n`);
  });
}
