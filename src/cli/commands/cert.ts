import { createPrivateKey } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { MoatError } from "../../errors.js";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import { parseDuration } from "../../lib/duration.js";
import {
  CERTIFICATE_STATUSES,
  KEY_TYPES,
  REVOCATION_REASONS,
  certificateStatus,
  certificateView,
  parseRevocationReason,
  toPem,
  type CertificateRecord,
  type CertificateStatus,
  type IssuedCertificate,
  type KeyType,
} from "../../pki/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { integerIn, parsePageLimit } from "../parse.js";

const COLUMNS = [
  { header: "serial", value: (r: CertificateRecord) => r.serialHex },
  { header: "device", value: (r: CertificateRecord) => r.deviceId },
  { header: "status", value: (r: CertificateRecord) => certificateStatus(r) },
  { header: "not after", value: (r: CertificateRecord) => r.notAfter },
  { header: "reason", value: (r: CertificateRecord) => r.revocationReason },
];

/** Reads a passphrase file: trailing newline dropped, at least 8 characters. */
export function readPassphrase(file: string): string {
  const passphrase = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  if (passphrase.length < 8) throw new MoatError("PKI_PASSPHRASE_INVALID", `the passphrase in ${file} is shorter than 8 characters`);
  return passphrase;
}

/** A key file reserved before anything is issued, so a bad path or passphrase fails first and nothing is left behind. */
export interface KeyOutput {
  write(pkcs8Der: Buffer): void;
  /** Removes the reserved (still empty) file after a failure. */
  abort(): void;
}

/**
 * Reserves `file` for a PKCS#8 private key (PEM, mode 0600), refusing to overwrite an existing file.
 * With a passphrase the key is encrypted (PKCS#8 EncryptedPrivateKeyInfo, PBES2 with AES-256-CBC).
 */
export function reserveKeyOutput(file: string, passphraseFile?: string): KeyOutput {
  const passphrase = passphraseFile ? readPassphrase(passphraseFile) : undefined;
  let fd: number;
  try {
    // "wx": create exclusively, so an existing key is never clobbered (and no symlink is followed into one).
    fd = openSync(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new MoatError("PKI_KEY_OUTPUT_EXISTS", `${file} exists; Moat never overwrites a key file`);
    throw error;
  }
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write(pkcs8Der) {
      const key = createPrivateKey({ key: pkcs8Der, format: "der", type: "pkcs8" });
      const pem = passphrase
        ? (key.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase }) as string)
        : (key.export({ format: "pem", type: "pkcs8" }) as string);
      try {
        writeSync(fd, pem);
      } finally {
        close();
      }
    },
    abort() {
      close();
      rmSync(file, { force: true });
    },
  };
}

/** Writes a private key file in one step (see `reserveKeyOutput`). */
export function writePrivateKey(file: string, pkcs8Der: Buffer, passphraseFile?: string): void {
  const output = reserveKeyOutput(file, passphraseFile);
  try {
    output.write(pkcs8Der);
  } catch (error) {
    output.abort();
    throw error;
  }
}

/** Runs `fn` with a reserved key file; on failure the file is removed. */
async function withKeyOutput<T>(file: string | undefined, passphraseFile: string | undefined, fn: (output: KeyOutput | undefined) => Promise<T>): Promise<T> {
  const output = file ? reserveKeyOutput(file, passphraseFile) : undefined;
  try {
    return await fn(output);
  } catch (error) {
    output?.abort();
    throw error;
  }
}

/** Reads a private key file (PEM, optionally encrypted, or DER) into PKCS#8 DER. */
export function readPrivateKey(file: string, passphraseFile?: string): Buffer {
  const data = readFileSync(file);
  const text = data.toString("latin1");
  const key = text.includes("-----BEGIN")
    ? createPrivateKey({ key: text, format: "pem", ...(passphraseFile ? { passphrase: readPassphrase(passphraseFile) } : {}) })
    : createPrivateKey({ key: data, format: "der", type: "pkcs8" });
  return key.export({ format: "der", type: "pkcs8" });
}

function parseKeyType(text: string): KeyType {
  if (!(KEY_TYPES as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not one of ${KEY_TYPES.join(", ")}`);
  return text as KeyType;
}

function parseReason(text: string): string {
  if (!Object.hasOwn(REVOCATION_REASONS, text)) throw new InvalidArgumentError(`'${text}' is not one of ${Object.keys(REVOCATION_REASONS).join(", ")}`);
  return text;
}

interface KeyOptions {
  csr?: string;
  generateKey?: boolean;
  keyOut?: string;
  keyType?: KeyType;
  passphraseFile?: string;
}

/** `--csr` and `--generate-key --key-out` exclude each other; one is required. */
function checkKeySource(o: KeyOptions): void {
  if (o.csr && o.generateKey) throw new InvalidArgumentError("use either --csr or --generate-key, not both");
  if (!o.csr && !o.generateKey) throw new InvalidArgumentError("give --csr FILE, or --generate-key with --key-out FILE");
  if (o.generateKey && !o.keyOut) throw new InvalidArgumentError("--generate-key needs --key-out FILE (the key is never stored by Moat)");
  if (o.passphraseFile && !o.generateKey) throw new InvalidArgumentError("--passphrase-file only applies with --generate-key");
}

function printIssued(issued: IssuedCertificate, o: { out?: string; json?: boolean; keyOut?: string }): void {
  const pem = issued.certificatePem;
  if (o.out) writeCertificate(o.out, pem + issued.issuingCaPem);
  if (o.json)
    printJson({ serial: issued.serialHex, deviceId: issued.deviceId, notAfter: issued.notAfter.toISOString(), fingerprint: issued.fingerprint, ...(o.out ? { out: o.out } : { certificatePem: pem }), ...(o.keyOut ? { keyOut: o.keyOut } : {}) });
  else if (!o.out) process.stdout.write(pem);
  if (!o.json) process.stderr.write(`issued ${issued.serialHex} for ${issued.deviceId}, valid until ${issued.notAfter.toISOString()}${o.out ? ` → ${o.out} (with the issuing CA)` : ""}${o.keyOut ? `, key → ${o.keyOut} (0600)` : ""}\n`);
}

function writeCertificate(file: string, pem: string): void {
  writeFileAtomicSync(file, pem, { mode: 0o644 });
}

function keySourceOptions(command: Command): Command {
  return command
    .option("--csr <file>", "PKCS#10 request (PEM or DER) made by the device")
    .option("--generate-key", "generate the key here for a device that cannot (written to --key-out, never stored)")
    .option("--key-out <file>", "where to write the generated PKCS#8 key (mode 0600, must not exist)")
    .addOption(new Option("--key-type <type>", "generated key type").choices([...KEY_TYPES]).default("ec-p256").argParser(parseKeyType))
    .option("--passphrase-file <file>", "encrypt the generated key with the passphrase in this file")
    .option("--days <n>", "validity in days, 1-3650 (the profile's maximum applies)", integerIn(1, 3650))
    .option("--out <file>", "write the certificate and issuing CA (PEM) here instead of stdout")
    .option("--json", "print JSON");
}

/** `moat cert …`: device certificates. */
export function register(program: Command): void {
  const cert = program.command("cert").description("device certificates: issue, list, show, revoke, rotate");

  keySourceOptions(cert.command("issue").description("issue a device certificate from a CSR, or with a generated key").requiredOption("--device <id>", "the device"))
    .addHelpText(
      "after",
      "\nExamples:\n  moat cert issue --device sensor-1 --csr sensor-1.csr --out sensor-1.pem\n  moat cert issue --device sensor-2 --generate-key --key-out sensor-2.key --out sensor-2.pem\n",
    )
    .action(async (o: KeyOptions & { device: string; days?: number; out?: string; json?: boolean }, command: Command) => {
      checkKeySource(o);
      const csr = o.csr ? readFileSync(o.csr) : undefined;
      await withKeyOutput(o.keyOut, o.passphraseFile, (keyOutput) =>
        withApp(command, ["pki"], async (app) => {
          if (csr) {
            const issued = await app.pki.certificates.issueFromCsr({ deviceId: o.device, csr, ...(o.days !== undefined ? { days: o.days } : {}), actor: cliActor() });
            return printIssued(issued, o);
          }
          const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: o.device, ...(o.keyType ? { keyType: o.keyType } : {}), ...(o.days !== undefined ? { days: o.days } : {}), actor: cliActor() });
          keyOutput!.write(issued.privateKeyPkcs8Der);
          printIssued(issued, o);
        }),
      );
    });

  cert
    .command("list")
    .description("list certificates")
    .option("--device <id>", "only this device")
    .addOption(new Option("--status <status>", "only this status").choices([...CERTIFICATE_STATUSES]))
    .option("--expiring-within <duration>", "only unexpired certificates expiring within this time, e.g. 30d")
    .option("--limit <n>", "page size (max 1000)", parsePageLimit, 1000)
    .option("--after <serial>", "start after this serial")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat cert list --device sensor-1\n  moat cert list --expiring-within 30d --json\n")
    .action(async (o: { device?: string; status?: CertificateStatus; expiringWithin?: string; limit: number; after?: string; json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const records = await app.pki.certificates.list({
          ...(o.device ? { deviceId: o.device } : {}),
          ...(o.status ? { status: o.status } : {}),
          ...(o.expiringWithin ? { expiringBefore: new Date(Date.now() + parseDuration(o.expiringWithin, "--expiring-within")).toISOString() } : {}),
          limit: o.limit,
          ...(o.after ? { after: o.after } : {}),
        });
        if (o.json) printJson({ certificates: records.map((r) => certificateView(r)) });
        else printTable(records, COLUMNS);
      }),
    );

  cert
    .command("show <serial>")
    .description("show one certificate")
    .option("--pem", "print the certificate as PEM")
    .option("--json", "print JSON (with the PEM)")
    .addHelpText("after", "\nExample:\n  moat cert show 4f1c…e2 --pem > device.pem\n")
    .action(async (serial: string, o: { pem?: boolean; json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const record = await app.pki.certificates.get(serial);
        const pem = toPem(record.certificateDer, "CERTIFICATE");
        if (o.json) printJson({ ...certificateView(record), certificatePem: pem });
        else if (o.pem) process.stdout.write(pem);
        else printRecord(certificateView(record));
      }),
    );

  cert
    .command("revoke [serial]")
    .description("revoke one certificate, or every certificate of a device with --device")
    .option("--device <id>", "revoke all of this device's certificates")
    .option("--reason <reason>", `RFC 5280 reason: ${Object.keys(REVOCATION_REASONS).join(", ")}`, parseReason, "unspecified")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat cert revoke 4f1c…e2 --reason keyCompromise\n  moat cert revoke --device sensor-1 --reason cessationOfOperation\n")
    .action(async (serial: string | undefined, o: { device?: string; reason: string; json?: boolean }, command: Command) => {
      if (!!serial === !!o.device) throw new InvalidArgumentError("give either a SERIAL or --device ID");
      await withApp(command, ["pki"], async (app) => {
        const reason = parseRevocationReason(o.reason);
        const revoked = serial ? [await app.pki.certificates.revoke(serial, reason, cliActor())] : await app.pki.certificates.revokeDevice(o.device!, reason, cliActor());
        if (o.json) printJson({ revoked: revoked.map((r) => certificateView(r)) });
        else printTable(revoked, COLUMNS);
      });
    });

  keySourceOptions(
    cert
      .command("rotate")
      .description("issue a new certificate; the device's older ones are superseded and revoked after the grace period (pki.rotationGraceHours)")
      .requiredOption("--device <id>", "the device"),
  )
    .addHelpText("after", "\nExamples:\n  moat cert rotate --device sensor-1 --csr new.csr --out new.pem\n  moat cert rotate --device sensor-2 --generate-key --key-out new.key --out new.pem\n")
    .action(async (o: KeyOptions & { device: string; days?: number; out?: string; json?: boolean }, command: Command) => {
      checkKeySource(o);
      const csr = o.csr ? readFileSync(o.csr) : undefined;
      await withKeyOutput(o.keyOut, o.passphraseFile, (keyOutput) =>
        withApp(command, ["pki"], async (app) => {
          const { issued, superseded } = await app.pki.certificates.rotate({
            deviceId: o.device,
            ...(csr ? { csr } : { keyType: o.keyType }),
            ...(o.days !== undefined ? { days: o.days } : {}),
            actor: cliActor(),
          });
          if (issued.privateKeyPkcs8Der) keyOutput!.write(issued.privateKeyPkcs8Der);
          printIssued(issued, o);
          if (!o.json) process.stderr.write(`superseded: ${superseded.length ? superseded.join(", ") : "(none)"}\n`);
        }),
      );
    });
}
