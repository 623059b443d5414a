import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { DEVICE_STATUSES, type DeviceRecord, type DeviceStatus } from "../../identity/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { collectKeyValue, integerIn, parsePageLimit } from "../parse.js";

const COLUMNS = [
  { header: "id", value: (d: DeviceRecord) => d.id },
  { header: "name", value: (d: DeviceRecord) => d.name },
  { header: "group", value: (d: DeviceRecord) => d.group },
  { header: "role", value: (d: DeviceRecord) => d.role },
  { header: "status", value: (d: DeviceRecord) => d.status },
  { header: "last seen", value: (d: DeviceRecord) => d.lastSeenAt },
];

function show(device: DeviceRecord, json?: boolean): void {
  if (json) printJson(device);
  else printRecord({ ...device, attributes: device.attributes });
}

const STATUS_VERBS: [string, DeviceStatus, string][] = [
  ["activate", "active", "allow the device to connect"],
  ["suspend", "suspended", "block the device until it is activated again"],
  ["quarantine", "quarantined", "restrict the device to the quarantine role"],
  ["decommission", "decommissioned", "retire the device for good (cannot be undone)"],
];

/** `moat device …`: the device registry. */
export function register(program: Command): void {
  const device = program.command("device").description("the device registry");

  device
    .command("add <id>")
    .description("register a device (status pending until its first certificate, unless --active)")
    .option("--name <name>", "display name (default: the id)")
    .option("--group <group>", "device group")
    .option("--role <role>", "role (default: device)")
    .option("--attr <key=value>", "attribute (repeatable)", collectKeyValue)
    .option("--active", "start as active instead of pending")
    .option("--json", "print the device as JSON")
    .addHelpText("after", "\nExample:\n  moat device add sensor-0042 --group boilers --attr floor=3\n")
    .action(async (id: string, o: { name?: string; group?: string; role?: string; attr?: Record<string, string>; active?: boolean; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const created = await app.devices.create(
          { id, ...(o.name ? { name: o.name } : {}), group: o.group ?? null, ...(o.role ? { role: o.role } : {}), attributes: o.attr ?? {}, status: o.active ? "active" : "pending" },
          cliActor(),
        );
        show(created, o.json);
      }),
    );

  device
    .command("list")
    .description("list devices")
    .addOption(new Option("--status <status>", "only this status").choices([...DEVICE_STATUSES]))
    .option("--group <group>", "only this group")
    .option("--role <role>", "only this role")
    .option("--search <text>", "id or name contains")
    .option("--limit <n>", "page size (max 1000)", parsePageLimit, 100)
    .option("--after <id>", "start after this id (the `next` of the previous page)")
    .option("--json", "print JSON ({devices, next})")
    .addHelpText("after", "\nExample:\n  moat device list --status active --group boilers --json\n")
    .action(async (o: { status?: DeviceStatus; group?: string; role?: string; search?: string; limit: number; after?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const page = await app.devices.list(o);
        if (o.json) printJson(page);
        else {
          printTable(page.devices, COLUMNS);
          if (page.next) process.stderr.write(`more: --after ${page.next}\n`);
        }
      }),
    );

  device
    .command("show <id>")
    .description("show one device")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat device show sensor-0042\n")
    .action(async (id: string, o: { json?: boolean }, command: Command) => withApp(command, [], async (app) => show(await app.devices.get(id), o.json)));

  device
    .command("update <id>")
    .description("change name, group, role or attributes (attributes given replace all attributes)")
    .option("--name <name>", "display name")
    .option("--group <group>", "device group ('' to clear)")
    .option("--role <role>", "role")
    .option("--attr <key=value>", "attribute (repeatable; replaces the attribute set)", collectKeyValue)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat device update sensor-0042 --group chillers --attr floor=4\n")
    .action(async (id: string, o: { name?: string; group?: string; role?: string; attr?: Record<string, string>; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const patch = {
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.group !== undefined ? { group: o.group === "" ? null : o.group } : {}),
          ...(o.role !== undefined ? { role: o.role } : {}),
          ...(o.attr !== undefined ? { attributes: o.attr } : {}),
        };
        show(await app.devices.update(id, patch, cliActor()), o.json);
      }),
    );

  for (const [verb, status, what] of STATUS_VERBS) {
    device
      .command(`${verb} <id>`)
      .description(what)
      .option("--reason <text>", "why (recorded in the audit log)")
      .option("--json", "print JSON")
      .addHelpText("after", `\nExample:\n  moat device ${verb} sensor-0042 --reason "ticket 123"\n`)
      .action(async (id: string, o: { reason?: string; json?: boolean }, command: Command) =>
        withApp(command, [], async (app) => show(await app.devices.setStatus(id, status, cliActor(), o.reason), o.json)),
      );
  }

  device
    .command("firmware [id]")
    .description("the firmware a device last reported running (version, security version, when, from the OTA client or the SDK); without an id, every device's")
    .option("--limit <n>", "page size without an id (max 1000)", parsePageLimit, 100)
    .option("--after <id>", "start after this device id (the `next` of the previous page)")
    .option("--json", "print JSON (one record or null; without an id {inventory, next})")
    .addHelpText("after", "\nExample:\n  moat device firmware sensor-0042 --json\n  moat device firmware --limit 500\n")
    .action(async (id: string | undefined, o: { limit: number; after?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        if (id !== undefined) {
          const record = await app.firmwareInventory.get(id);
          if (o.json) printJson(record);
          else if (record) printRecord({ ...record });
          else process.stdout.write(`${id} has not reported its firmware yet\n`);
          return;
        }
        const page = await app.firmwareInventory.list({ limit: o.limit, ...(o.after ? { after: o.after } : {}) });
        if (o.json) printJson(page);
        else {
          printTable(page.inventory, [
            { header: "device", value: (r) => r.deviceId },
            { header: "version", value: (r) => r.version },
            { header: "security version", value: (r) => r.securityVersion },
            { header: "reported", value: (r) => r.reportedAt },
            { header: "source", value: (r) => r.source },
          ]);
          if (page.next) process.stderr.write(`more: --after ${page.next}\n`);
        }
      }),
    );

  // Keys a device signs its MQTT JWTs with: the broker checks a token against the device's registered keys.
  const key = device.command("key").description("public keys a device signs its MQTT tokens with (ES256 / EdDSA)");
  key
    .command("add <id>")
    .description("register a public key (PEM or DER SPKI; EC P-256 or Ed25519) for device-signed MQTT JWTs")
    .requiredOption("--pubkey <file>", "the public key file")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  openssl pkey -in device.key -pubout -out device.pub\n  moat device key add sensor-0042 --pubkey device.pub\n")
    .action(async (id: string, o: { pubkey: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const added = await app.deviceCredentials.addKey(id, readFileSync(o.pubkey), cliActor());
        if (o.json) printJson({ deviceId: added.deviceId, keyId: added.keyId, createdAt: added.createdAt });
        else process.stdout.write(`${added.keyId}\n`);
      }),
    );
  key
    .command("list <id>")
    .description("list the device's registered public keys")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat device key list sensor-0042 --json\n")
    .action(async (id: string, o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const keys = await app.deviceCredentials.listKeys(id);
        if (o.json) printJson(keys);
        else printTable(keys, [{ header: "key id", value: (k) => k.keyId }, { header: "added", value: (k) => k.createdAt }, { header: "by", value: (k) => k.createdBy }]);
      }),
    );
  key
    .command("remove <id> <keyId>")
    .description("remove a registered key (live sessions that used it are closed)")
    .addHelpText("after", "\nExample:\n  moat device key remove sensor-0042 key:3f2a9c0d11e4b7a8\n")
    .action(async (id: string, keyId: string, _o: object, command: Command) => withApp(command, [], (app) => app.deviceCredentials.removeKey(id, keyId, cliActor())));

  device
    .command("secret")
    .description("the device's HMAC secret for HS256 MQTT tokens")
    .command("rotate <id>")
    .description("make a new secret current and print it once; the previous one keeps working for the grace period")
    .option("--grace-seconds <n>", "how long the previous secret keeps working, 0-604800 (default: broker.secretGraceSeconds, 3600)", integerIn(0, 7 * 86_400))
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat device secret rotate sensor-0042 --grace-seconds 600\n")
    .action(async (id: string, o: { graceSeconds?: number; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const rotated = await app.deviceCredentials.rotateSecret(id, o.graceSeconds ?? app.config["broker.secretGraceSeconds"], cliActor());
        if (o.json) printJson(rotated);
        else {
          process.stdout.write(`${rotated.secret}\n`);
          process.stderr.write(`secret ${rotated.secretId} for ${id} (base64url; shown once, store it on the device)` + (rotated.previousValidUntil ? `; the previous secret works until ${rotated.previousValidUntil}` : "") + "\n");
        }
      }),
    );
}
