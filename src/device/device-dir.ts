// What a device keeps between boots, in its own folder: who it is, where its server is, its trust
// anchor, its key and its certificate. Every file is written atomically (src/lib/atomic-file.ts);
// secrets are 0600 and the folder 0700. A renewal writes the new key and certificate under the next
// generation number and then rewrites device.json, which is the one commit point: a crash at any
// moment leaves either the old pair or the new pair in force, never a mixture.
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { MoatError } from "../errors.js";
import { writeFileAtomicSync } from "../lib/atomic-file.js";

/** Where the device's private key lives. */
export type KeyLocation =
  | { kind: "file"; encrypted: boolean }
  | { kind: "pkcs11"; module: string; tokenLabel: string; keyLabel: string };

/** device.json: everything but the key and certificate bytes. */
export interface DeviceState {
  format: 1;
  deviceId: string;
  /** The API base URL the device enrolled with (https://host:port). */
  server: string;
  /** EST base (…/.well-known/est). */
  estUrl: string;
  /** The MQTT endpoint, when the server advertised one or the device was told. */
  mqttUrl: string | null;
  trustDomain: string | null;
  /** The generation of key-<n>.pem / cert-<n>.pem in force. */
  generation: number;
  /** When the device received that certificate (ISO 8601): renewal counts the lifetime from here. */
  receivedAt?: string;
  key: KeyLocation;
  /** How the device authenticates to the broker. */
  auth: "mtls" | "jwt";
  /** The audience the broker expects in device JWTs (advertised by GET /v1/info). */
  jwtAudience?: string;
}

const STATE_FILE = "device.json";
const CA_FILE = "ca.pem";
export const keyFile = (generation: number): string => `key-${generation}.pem`;
export const certFile = (generation: number): string => `cert-${generation}.pem`;

export class DeviceDir {
  constructor(readonly path: string) {}

  exists(): boolean {
    return existsSync(join(this.path, STATE_FILE));
  }

  /** Makes the folder (0700) for a first enrollment; refuses one that already holds a device. */
  prepare(): void {
    if (this.exists()) throw new MoatError("DEVICE_STATE_EXISTS", `${this.path} already holds an enrolled device: open it with MoatDevice.open, or enroll into an empty folder`);
    mkdirSync(this.path, { recursive: true, mode: 0o700 });
  }

  readState(): DeviceState {
    const file = join(this.path, STATE_FILE);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
      throw new MoatError("DEVICE_STATE_INVALID", missing ? `${this.path} holds no enrolled device (no ${STATE_FILE}): enroll first` : `${file} cannot be read: ${(error as Error).message}`, { cause: error });
    }
    const state = parsed as Partial<DeviceState>;
    if (
      state === null ||
      typeof state !== "object" ||
      state.format !== 1 ||
      typeof state.deviceId !== "string" ||
      typeof state.server !== "string" ||
      typeof state.estUrl !== "string" ||
      !Number.isSafeInteger(state.generation) ||
      typeof state.key !== "object" ||
      state.key === null ||
      (state.auth !== "mtls" && state.auth !== "jwt")
    )
      throw new MoatError("DEVICE_STATE_INVALID", `${file} is not a device state this SDK knows`);
    return state as DeviceState;
  }

  writeState(state: DeviceState): void {
    writeFileAtomicSync(join(this.path, STATE_FILE), JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  }

  readCa(): string {
    return this.readText(CA_FILE);
  }

  writeCa(pem: string): void {
    writeFileAtomicSync(join(this.path, CA_FILE), pem, { mode: 0o644 });
  }

  readKey(generation: number): string {
    const file = keyFile(generation);
    // A key file others may read is refused: it would be a secret that already leaked.
    const mode = this.modeOf(file);
    if (mode !== null && (mode & 0o077) !== 0) throw new MoatError("DEVICE_STATE_INVALID", `${join(this.path, file)} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    return this.readText(file);
  }

  writeKey(generation: number, pem: string): void {
    writeFileAtomicSync(join(this.path, keyFile(generation)), pem, { mode: 0o600 });
  }

  hasKey(generation: number): boolean {
    return existsSync(join(this.path, keyFile(generation)));
  }

  readCertificate(generation: number): X509Certificate {
    const file = certFile(generation);
    try {
      return new X509Certificate(this.readText(file));
    } catch (error) {
      if (error instanceof MoatError) throw error;
      throw new MoatError("DEVICE_STATE_INVALID", `${join(this.path, file)} is not a certificate`, { cause: error });
    }
  }

  writeCertificate(generation: number, pem: string): void {
    writeFileAtomicSync(join(this.path, certFile(generation)), pem, { mode: 0o644 });
  }

  /** Removes key and certificate files of generations other than `keep` and `keep + 1` (a pending renewal). */
  pruneGenerations(keep: number): void {
    for (const name of readdirSync(this.path)) {
      const match = /^(?:key|cert)-(\d+)\.pem$/.exec(name);
      if (match && Number(match[1]) !== keep && Number(match[1]) !== keep + 1) rmSync(join(this.path, name), { force: true });
    }
  }

  /** Drops an unfinished renewal's files (a key the server never certified). */
  discardGeneration(generation: number): void {
    rmSync(join(this.path, keyFile(generation)), { force: true });
    rmSync(join(this.path, certFile(generation)), { force: true });
  }

  private modeOf(name: string): number | null {
    try {
      return statSync(join(this.path, name)).mode & 0o777;
    } catch {
      return null;
    }
  }

  private readText(name: string): string {
    try {
      return readFileSync(join(this.path, name), "utf8");
    } catch (error) {
      throw new MoatError("DEVICE_STATE_INVALID", `${join(this.path, name)} cannot be read: ${(error as Error).message}`, { cause: error });
    }
  }
}
