/**
 * The change feed's contract, open to every domain (like errors.ts): each kind of enforcement-relevant
 * change with the shape of its data. One schema per kind gives the TypeScript type producers write and
 * consumers read, the check applied to rows read back from the database or another node, and the data
 * column of docs/change-feed.md (src/change-feed.test.ts keeps that table, the producers and the
 * consumers in the source and this registry in agreement).
 */

/** A data shape: its TypeScript type (phantom), a runtime check and a one-line description for the docs. */
export interface Schema<T> {
  readonly describe: string;
  check(value: unknown): value is T;
  /** Phantom: carries T for inference; never set. */
  readonly _type?: T;
}

type Infer<S> = S extends Schema<infer T> ? T : never;

const schema = <T>(describe: string, check: (value: unknown) => boolean): Schema<T> => ({ describe, check: check as (value: unknown) => value is T });

const text: Schema<string> = schema("string", (v) => typeof v === "string");
const flag: Schema<boolean> = schema("boolean", (v) => typeof v === "boolean");
const count: Schema<number> = schema("integer", (v) => Number.isSafeInteger(v));

function oneOf<const V extends readonly string[]>(...values: V): Schema<V[number]> {
  return schema(values.map((v) => JSON.stringify(v)).join(" \\| "), (v) => typeof v === "string" && values.includes(v));
}

function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return schema(`${inner.describe} \\| null`, (v) => v === null || inner.check(v));
}

function listOf<T>(inner: Schema<T>): Schema<T[]> {
  return schema(`(${inner.describe})[]`, (v) => Array.isArray(v) && v.every((item) => inner.check(item)));
}

type Fields = Record<string, Schema<unknown>>;
type RecordOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** An object with exactly these fields required (unknown extra fields are ignored, not trusted). */
function record<const F extends Fields>(fields: F): Schema<RecordOf<F>> {
  const entries = Object.entries(fields);
  const describe = entries.length === 0 ? "{}" : `{ ${entries.map(([name, s]) => `${name}: ${s.describe}`).join(", ")} }`;
  return schema(describe, (v) => typeof v === "object" && v !== null && !Array.isArray(v) && entries.every(([name, s]) => s.check((v as Record<string, unknown>)[name])));
}

function either<A, B>(a: Schema<A>, b: Schema<B>): Schema<A | B> {
  return schema(`${a.describe} or ${b.describe}`, (v) => a.check(v) || b.check(v));
}

/** Any JSON object, for data another domain validates itself (the OTA message a campaign owes a device). */
const jsonObject: Schema<object> = schema("object", (v) => typeof v === "object" && v !== null && !Array.isArray(v));

/**
 * Every kind, dotted and domain first, with its data. Adding a kind here makes it writable; the test
 * beside this file fails until something produces it and docs/change-feed.md lists it.
 */
export const CHANGE_SCHEMAS = {
  /** A device was registered. */
  "device.created": record({ role: text, group: nullable(text), status: text }),
  /** Registry fields that feed decisions changed (group and attributes fill topic variables; role grants). */
  "device.updated": record({ fields: listOf(oneOf("name", "group", "role", "attributes")) }),
  /** A device moved between lifecycle states; only `active` and `quarantined` may hold a session. */
  "device.status": record({ from: text, to: text }),
  "cert.issued": record({ deviceId: text, serial: text }),
  "cert.revoked": record({ serial: text, deviceId: text, issuer: text, reason: text, revokedAt: text }),
  /** A new issuing CA, or the root key going off- or online. */
  "ca.changed": either(record({ role: oneOf("issuing"), previous: text }), record({ role: oneOf("root"), keyOnline: flag })),
  /** A CA signed a new CRL (subject: the CA serial); every node serves the newest one. */
  "crl.published": record({ number: count }),
  /** A role was seeded, created or deleted (subject: role names, comma-separated). */
  "policy.changed": record({ op: oneOf("seeded", "created", "deleted") }),
  /** A role was given to or taken from a device, a group or an operator token (subject: the role). */
  "role.assignment": record({ op: oneOf("assigned", "unassigned"), kind: oneOf("device", "group", "token"), target: text }),
  /** A device JWT key was added or removed, or its HMAC secret rotated. */
  "credential.changed": either(record({ deviceId: text, keyId: text }), record({ deviceId: text, secretId: text })),
  /** An operator API token was revoked (subject: the token's name). */
  "token.revoked": record({}),
  /** A new signed firmware key revocation list. */
  "firmware.revocations": record({ version: count }),
  /** OTA messages a campaign change owes devices, for the process that runs the broker to deliver. */
  "ota.notify": record({ origin: text, notifications: listOf(record({ deviceId: text, message: jsonObject })) }),
  /** A group's settings changed (subject: the group name): allowed networks, silence window, minimum security version. */
  "group.settings": record({ fields: listOf(oneOf("allowedCidrs", "silenceWindow", "minSecurityVersion")) }),
  /** A response playbook was applied or deleted (subject: its name); the executor re-reads the playbooks. */
  "playbook.changed": record({ op: oneOf("applied", "deleted") }),
  /** An address range was banned on the MQTT listeners or the ban lifted (subject: the range). */
  "ban.changed": record({ op: oneOf("banned", "unbanned"), range: text, expiresAt: nullable(text) }),
  /** The stored detection rules were replaced (`moat detect rules apply`; subject `detect-rules`): running servers reload them. */
  "detect.rules": record({ rules: count }),
} as const satisfies Record<string, Schema<unknown>>;

/** What kind of enforcement-relevant change happened: a closed union. */
export type ChangeKind = keyof typeof CHANGE_SCHEMAS;

export const CHANGE_KINDS = Object.keys(CHANGE_SCHEMAS) as readonly ChangeKind[];

/** The data a change of kind K carries. */
export type ChangeData<K extends ChangeKind = ChangeKind> = Infer<(typeof CHANGE_SCHEMAS)[K]>;

/** A change as a producer writes it; `kind` decides the type of `data`. */
export type ChangeInput<K extends ChangeKind = ChangeKind> = {
  [P in K]: {
    kind: P;
    /** The thing changed: a device id, a serial, a role name. */
    subject: string;
    data: ChangeData<P>;
  };
}[K];

/** A change as committed: with its position in the feed. */
export type Change<K extends ChangeKind = ChangeKind> = {
  [P in K]: ChangeInput<P> & { seq: number; createdAt: string };
}[K];

export function isChangeKind(kind: unknown): kind is ChangeKind {
  return typeof kind === "string" && Object.hasOwn(CHANGE_SCHEMAS, kind);
}

/**
 * Checks a change read back from the database or received from another node. Null for a kind this
 * version does not know or data that does not fit its kind: such a row cannot be acted on safely, and
 * acting on a guess could widen access.
 */
export function parseChange(raw: { seq: unknown; kind: unknown; subject: unknown; data: unknown; createdAt: unknown }): Change | null {
  if (!Number.isSafeInteger(raw.seq) || typeof raw.subject !== "string" || typeof raw.createdAt !== "string") return null;
  if (!isChangeKind(raw.kind) || !(CHANGE_SCHEMAS[raw.kind] as Schema<unknown>).check(raw.data)) return null;
  return { seq: raw.seq, kind: raw.kind, subject: raw.subject, data: raw.data, createdAt: raw.createdAt } as Change;
}

/** Appends a change-feed row inside the caller's transaction. */
export interface ChangeWriter {
  append(change: ChangeInput): Promise<void>;
}

/** Follows the feed: in-process pushes after commit plus polling (other processes on the same database). */
export interface ChangeFeed {
  subscribe(listener: (change: Change) => void): () => void;
  latestSeq(): Promise<number>;
}
