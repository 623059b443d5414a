// A complete device on the Moat device SDK (docs/device-sdk.md): the first run enrolls over EST with a
// one-time token, later runs boot from the device folder; then it connects over mutual TLS, reports its
// firmware, takes commands, publishes telemetry every few seconds at QoS 1, renews its certificate by
// itself, and stops cleanly on Ctrl-C. How to run it against `moat start`: README.md beside this file.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MoatDevice, type MoatError } from "moat/device";

/** Settings from the environment; the enrollment token and the key secret come from files, never the command line. */
const env = {
  server: process.env.MOAT_SERVER ?? "https://localhost:8443",
  ca: process.env.MOAT_CA ?? "root.pem",
  deviceId: process.env.MOAT_DEVICE_ID ?? "sensor-1",
  dir: process.env.MOAT_DEVICE_DIR ?? "./sensor-1",
  tokenFile: process.env.MOAT_ENROLL_TOKEN_FILE,
  secretFile: process.env.MOAT_DEVICE_SECRET_FILE,
  intervalMs: Number(process.env.MOAT_TELEMETRY_MS ?? 5000),
};

const readSecret = (file: string | undefined): string | undefined => (file ? readFileSync(file, "utf8").trim() : undefined);

async function start(): Promise<MoatDevice> {
  const secret = readSecret(env.secretFile);
  if (existsSync(join(env.dir, "device.json"))) return MoatDevice.open({ dir: env.dir, ...(secret ? { secret } : {}) });
  const token = readSecret(env.tokenFile);
  if (!token) throw new Error(`${env.dir} holds no device yet: set MOAT_ENROLL_TOKEN_FILE to a file with a token from \`moat enroll-token create --device ${env.deviceId}\``);
  console.error(`enrolling ${env.deviceId} at ${env.server} …`);
  return MoatDevice.enroll({ server: env.server, ca: readFileSync(env.ca), deviceId: env.deviceId, token, dir: env.dir, ...(secret ? { secret } : {}) });
}

async function main(): Promise<void> {
  const device = await start();
  const id = device.deviceId;
  console.error(`device ${id}: certificate ${device.certificate.serial}, valid until ${device.certificate.notAfter.toISOString()}`);

  device.on("connected", ({ sessionPresent }) => console.error(`connected (session ${sessionPresent ? "resumed" : "new"})`));
  device.on("disconnected", ({ retryInMs, reason }) => console.error(`disconnected (${reason}); retrying in ${retryInMs} ms`));
  device.on("renewed", (certificate) => console.error(`renewed: certificate ${certificate.serial}, valid until ${certificate.notAfter.toISOString()}`));
  let timer: NodeJS.Timeout | undefined;
  const stop = async (reason: string) => {
    clearInterval(timer);
    console.error(`stopping: ${reason}`);
    await device.close();
  };
  device.on("stopped", (error: MoatError) => {
    // Revoked, suspended, decommissioned or expired: retrying cannot help; a person must act (docs/device-sdk.md).
    process.exitCode = 1;
    void stop(`${error.code}: ${error.message}`);
  });

  await device.connect();
  await device.ota.reportInventory({ version: "1.0.0", securityVersion: 1 });
  await device.subscribe(`devices/${id}/commands/#`, (topic, payload) => console.log(`command ${topic}: ${payload.toString()}`));

  let reading = 20;
  timer = setInterval(() => {
    reading += Math.random() - 0.5;
    const payload = JSON.stringify({ t: new Date().toISOString(), celsius: Number(reading.toFixed(2)) });
    // QoS 1: acknowledged by the broker; queued while offline and sent again after a reconnect.
    device.publish(`devices/${id}/telemetry/temperature`, payload, { qos: 1 }).then(
      () => console.log(`sent ${payload}`),
      (error: unknown) => console.error(`not sent: ${(error as Error).message}`),
    );
  }, env.intervalMs);

  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((error: unknown) => {
  const coded = error as Partial<MoatError>;
  console.error(coded.code ? `error ${coded.code}: ${coded.message}` : error);
  process.exitCode = 1;
});
