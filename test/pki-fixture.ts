import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { bitString, bitString as bits, boolean, implicitConstructed, nullValue, octetString, oid, sequence, setOf, smallInteger, utf8String } from "../src/crypto/der/encode.js";
import { OID } from "../src/pki/oids.js";
import { isDeviceRoleIn } from "../src/policy/index.js";
import { DeviceService, EnrollmentTokenService, type DeviceStatus } from "../src/identity/index.js";
import { Envelope, singleKekProvider, softwareKek } from "../src/keys/index.js";
import { CaRegistry, Pki, type KeyType } from "../src/pki/index.js";
import { caRegistryStore, identityStore, policyStore, pkiStore, type Store } from "../src/store/index.js";
import { createTestDatabase, type TestDatabase } from "./helpers/dialects.js";

export const TRUST_DOMAIN = "fleet.example";

/** A store with a CA hierarchy and the PKI services wired as `createApp` wires them. */
export interface PkiFixture {
  db: TestDatabase;
  store: Store;
  registry: CaRegistry;
  devices: DeviceService;
  enrollmentTokens: EnrollmentTokenService;
  pki: Pki;
  addDevice(id: string, status?: DeviceStatus, group?: string): Promise<void>;
  close(): Promise<void>;
}

export async function createPkiFixture(
  dialect: "sqlite" | "postgres",
  options: { keyType?: KeyType; rotationGraceMs?: number; publicUrl?: string; groupDays?: Record<string, number> } = {},
): Promise<PkiFixture> {
  const db = await createTestDatabase(dialect);
  const store = await db.openStore();
  const envelope = new Envelope(singleKekProvider("test", softwareKek(randomBytes(32), "test")));
  const registry = new CaRegistry(caRegistryStore(store), envelope);
  const publicUrl = options.publicUrl ?? "http://127.0.0.1:8080";
  await registry.initialize({ keyType: options.keyType ?? "ec-p256", trustDomain: TRUST_DOMAIN, hostnames: ["127.0.0.1", "localhost"], publicUrl }, "test");
  const devices = new DeviceService(identityStore(store), (role) => isDeviceRoleIn(policyStore(store).roles, role));
  const enrollmentTokens = new EnrollmentTokenService(identityStore(store));
  const pki = new Pki({
    store: pkiStore(store, (uow, id, actor) => devices.setStatusIn(uow, id, "active", actor, "first certificate").then(() => undefined), enrollmentTokens),
    registry,
    trustDomain: TRUST_DOMAIN,
    publicUrl,
    validity: { defaultDays: 90, maxDays: 397, groupDays: options.groupDays ?? {} },
    crlValidityMs: 86_400_000,
    rotationGraceMs: options.rotationGraceMs ?? 0,
    expiryWindowMs: 30 * 86_400_000,
  });
  const stop = store.subscribe((change) => pki.onChange(change));
  return {
    db,
    store,
    registry,
    devices,
    enrollmentTokens,
    pki,
    async addDevice(id, status = "active", group) {
      await devices.create({ id, status: status === "pending" ? "pending" : "active", ...(group ? { group } : {}) }, "test");
      if (status !== "active" && status !== "pending") await devices.setStatus(id, status, "test");
    },
    async close() {
      stop();
      await store.close();
      await db.cleanup();
    },
  };
}


export interface CsrOptions {
  /** [oid, value] pairs; default CN = cn when given. */
  subject?: [string, string][];
  key?: KeyObject;
  keyType?: "p256" | "p384" | "rsa2048" | "rsa1024" | "ed25519" | "secp256k1";
  requestCa?: boolean;
  requestKeyCertSign?: boolean;
  tamper?: boolean;
  signatureAlgorithm?: "sha1";
}

/** Builds a PKCS#10 CSR in DER the way a device would (tests only; openssl makes the interop ones). */
export function buildCsr(options: CsrOptions = {}): { der: Buffer; privateKey: KeyObject } {
  const keyType = options.keyType ?? "p256";
  const pair = options.key
    ? { privateKey: options.key, publicKey: createPublicKey(options.key) }
    : keyType === "p256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : keyType === "p384"
        ? generateKeyPairSync("ec", { namedCurve: "P-384" })
        : keyType === "secp256k1"
          ? generateKeyPairSync("ec", { namedCurve: "secp256k1" })
          : keyType === "ed25519"
            ? generateKeyPairSync("ed25519")
            : generateKeyPairSync("rsa", { modulusLength: keyType === "rsa1024" ? 1024 : 2048 });
  const spki = pair.publicKey.export({ format: "der", type: "spki" });
  const name = sequence(...(options.subject ?? []).map(([type, value]) => setOf(sequence(oid(type), utf8String(value)))));
  const extensions: Buffer[] = [];
  if (options.requestCa) extensions.push(sequence(oid(OID.basicConstraints), boolean(true), octetString(sequence(boolean(true)))));
  if (options.requestKeyCertSign) extensions.push(sequence(oid(OID.keyUsage), octetString(bits(Buffer.from([0x06]), 1))));
  const attributes = extensions.length ? sequence(oid(OID.extensionRequest), setOf(sequence(...extensions))) : null;
  const cri = sequence(smallInteger(0), name, spki, implicitConstructed(0, attributes ?? Buffer.alloc(0)));
  const isEd = keyType === "ed25519";
  const isRsa = keyType.startsWith("rsa");
  const digest = options.signatureAlgorithm === "sha1" ? "sha1" : isEd ? null : keyType === "p384" ? "sha384" : "sha256";
  const algorithm = isEd
    ? sequence(oid(OID.ed25519))
    : isRsa
      ? sequence(oid(digest === "sha1" ? "1.2.840.113549.1.1.5" : OID.sha256WithRsa), nullValue())
      : sequence(oid(digest === "sha1" ? "1.2.840.10045.4.1" : keyType === "p384" ? OID.ecdsaWithSha384 : OID.ecdsaWithSha256));
  const signature = sign(digest, cri, pair.privateKey);
  if (options.tamper) signature[signature.length - 1]! ^= 0x01;
  return { der: sequence(cri, algorithm, bitString(signature)), privateKey: pair.privateKey };
}
