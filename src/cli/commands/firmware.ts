import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { MoatError } from "../../errors.js";
import { writeFileAtomic } from "../../lib/atomic-file.js";
import {
  SIGNATURE_ALGORITHMS,
  TUF_ROLES,
  fromBase64Url,
  parsePublicKey,
  serializeManifest,
  serializePublicKey,
  toBase64Url,
  verifyFirmware,
  verifyLegacyFirmware,
  type FirmwareKeyView,
  type SignatureAlgorithm,
  type TufRole,
} from "../../firmware/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable, progress } from "../output.js";
import { collect, integerIn } from "../parse.js";

const PRIVATE_KEY_FILE_TYPE = "moat-firmware-private-key/1";

const KEY_COLUMNS = [
  { header: "name", value: (k: FirmwareKeyView) => k.name },
  { header: "purpose", value: (k: FirmwareKeyView) => k.purpose },
  { header: "alg", value: (k: FirmwareKeyView) => k.alg },
  { header: "key id", value: (k: FirmwareKeyView) => `${k.keyId.slice(0, 16)}…` },
  { header: "valid until", value: (k: FirmwareKeyView) => k.notAfter },
  { header: "revoked", value: (k: FirmwareKeyView) => k.revokedAt },
  { header: "private key", value: (k: FirmwareKeyView) => k.location ?? (k.offline ? "offline" : "sealed in the store") },
];

function algorithmOption(defaultAlg: SignatureAlgorithm): Option {
  return new Option("--alg <alg>", "signature algorithm").choices([...SIGNATURE_ALGORITHMS]).default(defaultAlg);
}

/** Reads an offline root private key file written by `moat firmware root init --offline-out`. */
function readPrivateKeyFile(path: string | undefined): Buffer | undefined {
  if (!path) return undefined;
  let value: { type?: unknown; privateKey?: unknown };
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new MoatError("FIRMWARE_KEY_MALFORMED", `${path} is not a Moat firmware private key file`, { cause });
  }
  if (value.type !== PRIVATE_KEY_FILE_TYPE) throw new MoatError("FIRMWARE_KEY_MALFORMED", `${path} is not a ${PRIVATE_KEY_FILE_TYPE} file`);
  return fromBase64Url(value.privateKey, "privateKey", "FIRMWARE_KEY_MALFORMED");
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new MoatError("VALIDATION_FAILED", `cannot read the ${what} ${path}`, { cause });
  }
}

function parseRole(text: string): TufRole {
  if (!(TUF_ROLES as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not one of ${TUF_ROLES.join(", ")}`);
  return text as TufRole;
}

/**
 * `moat firmware sign --version V` meets the program's own `--version` flag, which commander matches
 * anywhere on the line. Within `firmware sign`, `--version V` is joined into `--version=V`: the
 * program's flag takes no value, so commander passes the joined form on to the sign command.
 */
function routeSignVersion(program: Command): void {
  const parseOptions = program.parseOptions.bind(program);
  program.parseOptions = (args: string[]) => {
    const group = args.indexOf("firmware");
    const sign = group >= 0 && args[group + 1] === "sign" ? group + 1 : -1;
    if (sign < 0) return parseOptions(args);
    const joined: string[] = args.slice(0, sign + 1);
    for (let i = sign + 1; i < args.length; i++) {
      const value = args[i + 1];
      if (args[i] === "--version" && value !== undefined && !value.startsWith("-")) {
        joined.push(`--version=${value}`);
        i++;
      } else joined.push(args[i]!);
    }
    return parseOptions(joined);
  };
}

/** `moat firmware …`: signing keys, manifests, secure-boot verification, the TUF repository. */
export function register(program: Command): void {
  routeSignVersion(program);
  const firmware = program.command("firmware").description("firmware signing keys, signed manifests, verification and the TUF repository");

  const root = firmware.command("root").description("the root firmware key that certifies signing keys");
  root
    .command("init")
    .description("create the root key (online, in the PKCS#11 token or sealed in the store; or offline, written once to a file)")
    .option("--name <name>", "key name", "root")
    .addOption(algorithmOption("hybrid-ed25519-mldsa65"))
    .option("--offline-out <file>", "keep the root offline: write its private key to this file (mode 0600) and store only the public key")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat firmware root init\n  moat firmware root init --offline-out /media/usb/firmware-root.key\n")
    .action(async (o: { name: string; alg: SignatureAlgorithm; offlineOut?: string; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const { key, offlinePrivateKey } = await app.firmware.keys.createRoot({ name: o.name, alg: o.alg, offline: !!o.offlineOut, actor: cliActor() });
        if (offlinePrivateKey && o.offlineOut) {
          await writeFileAtomic(o.offlineOut, `${JSON.stringify({ type: PRIVATE_KEY_FILE_TYPE, name: key.name, alg: key.alg, privateKey: toBase64Url(offlinePrivateKey) })}\n`);
          offlinePrivateKey.fill(0);
          progress(`root private key written to ${o.offlineOut} (mode 0600); keep it offline`);
        }
        if (o.json) printJson(key);
        else printRecord({ ...key });
      }),
    );
  root
    .command("export")
    .description("write the root public key that devices pin (--trust ROOT.pub)")
    .option("--name <name>", "root key name", "root")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExample:\n  moat firmware root export --out root.pub\n")
    .action(async (o: { name: string; out?: string }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const text = serializePublicKey(await app.firmware.keys.rootPublicKey(o.name));
        if (o.out) await writeFileAtomic(o.out, text);
        else process.stdout.write(text);
      }),
    );

  firmware
    .command("keygen")
    .description("generate a signing key, certified by the root for a validity window (creates an online root first if there is none)")
    .option("--name <name>", "key name (default signing-<date>-<alg>)")
    .addOption(algorithmOption("ed25519"))
    .option("--valid-days <days>", "certificate validity in days, 1-3650", integerIn(1, 3650), 365)
    .option("--root <name>", "root key that certifies it", "root")
    .option("--root-key-file <file>", "the root's private key file, when the root is kept offline")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat firmware keygen\n  moat firmware keygen --alg hybrid-ed25519-mldsa65 --name release-2026 --valid-days 730\n")
    .action(async (o: { name?: string; alg: SignatureAlgorithm; validDays: number; root: string; rootKeyFile?: string; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const rootPrivateKey = readPrivateKeyFile(o.rootKeyFile);
        const key = await app.firmware.keys.generateSigningKey({
          ...(o.name ? { name: o.name } : {}),
          alg: o.alg,
          validDays: o.validDays,
          root: o.root,
          ...(rootPrivateKey ? { rootPrivateKey } : {}),
          actor: cliActor(),
        });
        rootPrivateKey?.fill(0);
        if (o.json) printJson(key);
        else printRecord({ ...key });
      }),
    );

  firmware
    .command("keys")
    .description("list root and signing keys")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware keys --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const keys = await app.firmware.keys.list();
        if (o.json) printJson(keys);
        else printTable(keys, KEY_COLUMNS);
      }),
    );

  firmware
    .command("revoke <name>")
    .description("revoke a signing key: a new root-signed revocation list makes devices refuse its manifests")
    .requiredOption("--reason <text>", "why (e.g. keyCompromise)")
    .option("--root-key-file <file>", "the root's private key file, when the root is kept offline")
    .option("--json", "print JSON")
    .addHelpText("after", '\nExample:\n  moat firmware revoke signing-2026-01-01-ed25519 --reason "laptop stolen"\n')
    .action(async (name: string, o: { reason: string; rootKeyFile?: string; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const rootPrivateKey = readPrivateKeyFile(o.rootKeyFile);
        const { version } = await app.firmware.keys.revoke({ name, reason: o.reason, actor: cliActor(), ...(rootPrivateKey ? { rootPrivateKey } : {}) });
        if (o.json) printJson({ name, revocationListVersion: version });
        else process.stdout.write(`revoked ${name}; revocation list version ${version}\n`);
      }),
    );

  firmware
    .command("revocations")
    .description("write the newest signed revocation list (for devices and `moat firmware verify --revocations`)")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExample:\n  moat firmware revocations --out revocations.json\n")
    .action(async (o: { out?: string }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const list = await app.firmware.keys.revocationList();
        if (!list) throw new MoatError("NOT_FOUND", "no signing key has been revoked yet");
        const text = `${JSON.stringify(list.document, null, 2)}\n`;
        if (o.out) await writeFileAtomic(o.out, text);
        else process.stdout.write(text);
      }),
    );

  firmware
    .command("sign <image>")
    .description("write a signed manifest for an image (SHA-256 and size are computed here)")
    .requiredOption("--version <semver>", "firmware version, e.g. 2.1.0")
    .requiredOption("--security-version <n>", "monotonic security version for anti-rollback", integerIn(0, Number.MAX_SAFE_INTEGER))
    .requiredOption("--hardware <id>", "hardware id / device class the image is for")
    .requiredOption("--out <file>", "manifest file to write")
    .option("--vendor <name>", "vendor name", "Moat")
    .option("--key <name>", "signing key (default: the newest usable one)")
    .option("--target <path>", "TUF target path of the image (default <hardware>/<version>/<file name>)")
    .option("--description <text>", "free text")
    .option("--not-before <time>", "install constraint: not before this RFC 3339 UTC time")
    .option("--not-after <time>", "install constraint: not after this RFC 3339 UTC time")
    .option("--min-current-security-version <n>", "install constraint: device must already be at this security version", integerIn(0, Number.MAX_SAFE_INTEGER))
    .addHelpText("after", "\nExample:\n  moat firmware sign build/fw.bin --version 2.1.0 --security-version 7 --hardware sensor-v2 --out fw.manifest.json\n")
    .action(
      async (
        image: string,
        o: { version: string; securityVersion: number; hardware: string; out: string; vendor: string; key?: string; target?: string; description?: string; notBefore?: string; notAfter?: string; minCurrentSecurityVersion?: number },
        command: Command,
      ) =>
        withApp(command, ["firmware"], async (app) => {
          const constraints = {
            ...(o.notBefore ? { notBefore: o.notBefore } : {}),
            ...(o.notAfter ? { notAfter: o.notAfter } : {}),
            ...(o.minCurrentSecurityVersion !== undefined ? { minCurrentSecurityVersion: o.minCurrentSecurityVersion } : {}),
          };
          progress(`hashing ${image}…`);
          const signed = await app.firmware.keys.signImage({
            image,
            keyName: o.key,
            actor: cliActor(),
            facts: {
              vendor: o.vendor,
              hardwareId: o.hardware,
              version: o.version,
              securityVersion: o.securityVersion,
              ...(o.target ? { imagePath: o.target } : {}),
              ...(o.description ? { description: o.description } : {}),
              ...(Object.keys(constraints).length > 0 ? { constraints } : {}),
            },
          });
          await writeFileAtomic(o.out, serializeManifest(signed));
          process.stdout.write(`signed manifest written to ${o.out}\n`);
        }),
    );

  firmware
    .command("verify <image>")
    .description("secure-boot check of an image against its manifest and pinned root key(s); exit 0 valid, 1 invalid with the reason")
    .requiredOption("--manifest <file>", "signed manifest")
    .requiredOption("--trust <file>", "pinned root public key (repeatable)", collect)
    .option("--min-security-version <n>", "anti-rollback floor (the device's counter)", integerIn(0, Number.MAX_SAFE_INTEGER))
    .option("--hardware <id>", "the device's hardware id")
    .option("--revocations <file>", "signed revocation list to honour")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware verify fw.bin --manifest fw.manifest.json --trust root.pub --hardware sensor-v2 --min-security-version 6\n")
    .action(async (image: string, o: { manifest: string; trust: string[]; minSecurityVersion?: number; hardware?: string; revocations?: string; json?: boolean }) => {
      // Pure check: no data dir, no database. This is what a device's bootloader does.
      const result = await verifyFirmware(image, readText(o.manifest, "manifest"), {
        trustedRoots: o.trust.map((file) => parsePublicKey(readText(file, "trusted key"))),
        ...(o.hardware !== undefined ? { hardwareId: o.hardware } : {}),
        ...(o.minSecurityVersion !== undefined ? { minSecurityVersion: o.minSecurityVersion } : {}),
        ...(o.revocations ? { revocations: JSON.parse(readText(o.revocations, "revocation list")) } : {}),
      });
      const summary = {
        valid: true,
        strength: result.strength,
        hardwareId: result.manifest.hardwareId,
        version: result.manifest.version,
        securityVersion: result.manifest.securityVersion,
        sha256: result.manifest.image.sha256,
        signers: result.signers,
      };
      if (o.json) printJson(summary);
      else process.stdout.write(`valid: ${summary.hardwareId} ${summary.version} (security version ${summary.securityVersion}), ${result.strength}, signed by ${result.signers.map((s) => `${s.name} (${s.alg})`).join(", ")}\n`);
    });

  firmware
    .command("verify-legacy <image>")
    .description("the seed guide's check (trusted SHA-256 + HMAC with a shared secret); reported as WEAKER than signed manifests")
    .requiredOption("--sha256 <hex>", "trusted SHA-256 of the image")
    .requiredOption("--hmac <hex>", "expected HMAC-SHA256 of the image")
    .requiredOption("--secret-file <file>", "file holding the shared HMAC secret")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware verify-legacy fw.bin --sha256 9f86… --hmac 1c2a… --secret-file hmac.key\n")
    .action(async (image: string, o: { sha256: string; hmac: string; secretFile: string; json?: boolean }) => {
      const result = await verifyLegacyFirmware(image, { trustedSha256: o.sha256.toLowerCase(), expectedHmac: o.hmac.toLowerCase(), secret: readFileSync(o.secretFile) });
      if (o.json) printJson({ valid: true, ...result });
      else {
        process.stdout.write("valid (legacy mode, WEAKER than signed manifests)\n");
        for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      }
    });

  const tuf = firmware.command("tuf").description("the TUF repository served under /tuf/");
  tuf
    .command("init")
    .description("create the TUF repository: root keys with a threshold, one key per online role")
    .option("--root-keys <n>", "number of root keys, 1-9", integerIn(1, 9), 3)
    .option("--threshold <n>", "root signatures required, 1-9 and at most --root-keys", integerIn(1, 9), 2)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware tuf init --root-keys 3 --threshold 2\n")
    .action(async (o: { rootKeys: number; threshold: number; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const status = await app.firmware.tuf.init({ rootKeys: o.rootKeys, rootThreshold: o.threshold, actor: cliActor() });
        if (o.json) printJson(status);
        else printRecord({ ...status.versions, consistentSnapshot: status.consistentSnapshot });
      }),
    );
  tuf
    .command("status")
    .description("versions and expiries of the four roles")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware tuf status --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const status = await app.firmware.tuf.status();
        if (o.json) printJson(status);
        else printTable(TUF_ROLES.map((role) => ({ role, version: status.versions[role], expires: status.expires[role] })), [
          { header: "role", value: (r) => r.role },
          { header: "version", value: (r) => r.version },
          { header: "expires", value: (r) => r.expires },
        ]);
      }),
    );
  tuf
    .command("targets")
    .description("list published targets")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware tuf targets --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const targets = await app.firmware.tuf.listTargets();
        if (o.json) printJson(targets);
        else printTable(targets, [
          { header: "path", value: (t) => t.path },
          { header: "length", value: (t) => t.length },
          { header: "version", value: (t) => t.custom.version },
          { header: "security", value: (t) => t.custom.securityVersion },
        ]);
      }),
    );
  tuf
    .command("root")
    .description("write the root metadata a device pins before its first update")
    .option("--version <n>", "root version (default newest)", integerIn(1, 1_000_000))
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExample:\n  moat firmware tuf root --out root.json\n")
    .action(async (o: { version?: number; out?: string }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const bytes = await app.firmware.tuf.trustedRoot(o.version);
        if (o.out) await writeFileAtomic(o.out, bytes);
        else process.stdout.write(bytes);
      }),
    );
  tuf
    .command("rotate <role>")
    .description("replace a role's keys through a new root version (root, targets, snapshot, timestamp)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware tuf rotate timestamp\n")
    .action(async (role: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const result = await app.firmware.tuf.rotate(parseRole(role), cliActor());
        if (o.json) printJson(result);
        else process.stdout.write(`rotated ${role}; root is now version ${result.rootVersion}\n`);
      }),
    );
  tuf
    .command("refresh")
    .description("re-sign timestamp/snapshot/targets that are past half their lifetime (moat serve does this itself)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat firmware tuf refresh\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const result = await app.firmware.tuf.refresh();
        if (o.json) printJson(result);
        else printRecord(result);
      }),
    );
}
