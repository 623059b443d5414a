/**
 * Moat's administrative MQTT connection to Mosquitto's dynamic-security plugin: over the unix socket in
 * the set-up directory, as `moat-admin`, commands published as JSON on `$CONTROL/dynamic-security/v1`
 * and answers read from `.../response`, matched by correlation data. MQTT.js reconnects by itself after
 * Mosquitto restarts; a command sent meanwhile waits for the connection (up to its timeout).
 */
import { randomUUID } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import { MoatError } from "../errors.js";
import { ADMIN_USERNAME } from "./dynsec-state.js";

const CONTROL_TOPIC = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;
/** Commands per published message: keeps each control message small. */
const BATCH = 100;

export interface DynsecResponse {
  command: string;
  error?: string;
  data?: Record<string, unknown>;
}

export type DynsecCommand = { command: string } & Record<string, unknown>;

interface Pending {
  resolve: (response: DynsecResponse) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class DynsecAdmin {
  private readonly pending = new Map<string, Pending>();

  private constructor(private readonly client: MqttClient) {
    client.on("message", (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let parsed: { responses?: Array<DynsecResponse & { correlationData?: string }> };
      try {
        parsed = JSON.parse(payload.toString("utf8")) as typeof parsed;
      } catch {
        return;
      }
      for (const response of parsed.responses ?? []) {
        const id = response.correlationData;
        if (typeof id !== "string") continue;
        const waiting = this.pending.get(id);
        if (!waiting) continue;
        this.pending.delete(id);
        clearTimeout(waiting.timer);
        waiting.resolve({ command: response.command, ...(response.error ? { error: response.error } : {}), ...(response.data ? { data: response.data } : {}) });
      }
    });
  }

  /** Connects and subscribes to the answers; MOSQUITTO_ADMIN_FAILED when the socket does not answer in time. */
  static async connect(socket: string, password: string, options: { timeoutMs?: number; reconnect?: boolean } = {}): Promise<DynsecAdmin> {
    const client = mqtt.connect({
      protocol: "mqtt",
      unixSocket: true,
      path: socket,
      username: ADMIN_USERNAME,
      password,
      protocolVersion: 5,
      clientId: `moat-admin-${randomUUID().slice(0, 8)}`,
      clean: true,
      reconnectPeriod: options.reconnect === false ? 0 : 250,
      connectTimeout: options.timeoutMs ?? 10_000,
      resubscribe: true,
    });
    const admin = new DynsecAdmin(client);
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        client.end(true);
        reject(new MoatError("MOSQUITTO_ADMIN_FAILED", `the control channel ${socket} did not answer: ${why} (is moat serve with broker.mode = mosquitto running?)`, { detail: { socket } }));
      };
      const timer = setTimeout(() => fail("timed out"), options.timeoutMs ?? 10_000);
      client.once("connect", () => {
        client.subscribe(RESPONSE_TOPIC, { qos: 1 }, (err) => {
          clearTimeout(timer);
          if (err) fail(err.message);
          else resolve();
        });
      });
      client.once("error", (err) => {
        if (options.reconnect === false) {
          clearTimeout(timer);
          fail(err.message);
        }
      });
    });
    // Errors after the first connect are reconnection attempts; MQTT.js keeps trying.
    client.on("error", () => undefined);
    return admin;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Runs commands in order; one answer per command (an `error` field where dynsec refused one). */
  async run(commands: readonly DynsecCommand[], timeoutMs = 10_000): Promise<DynsecResponse[]> {
    const answers: DynsecResponse[] = [];
    for (let i = 0; i < commands.length; i += BATCH) answers.push(...(await this.runBatch(commands.slice(i, i + BATCH), timeoutMs)));
    return answers;
  }

  /** Runs commands and throws MOSQUITTO_ADMIN_FAILED for the first refused one (errors in `tolerate` aside). */
  async runOrThrow(commands: readonly DynsecCommand[], tolerate: (response: DynsecResponse) => boolean = () => false): Promise<DynsecResponse[]> {
    const answers = await this.run(commands);
    const failed = answers.find((answer) => answer.error !== undefined && !tolerate(answer));
    if (failed) throw new MoatError("MOSQUITTO_ADMIN_FAILED", `Mosquitto refused ${failed.command}: ${failed.error}`, { detail: { command: failed.command, error: failed.error } });
    return answers;
  }

  private runBatch(commands: readonly DynsecCommand[], timeoutMs: number): Promise<DynsecResponse[]> {
    const batch = randomUUID();
    const waits = commands.map(
      (_, i) =>
        new Promise<DynsecResponse>((resolve) => {
          const id = `${batch}:${i}`;
          const timer = setTimeout(() => {
            this.pending.delete(id);
            resolve({ command: commands[i]!.command, error: "no answer from Mosquitto (timed out)" });
          }, timeoutMs);
          this.pending.set(id, { resolve, timer });
        }),
    );
    const payload = JSON.stringify({ commands: commands.map((command, i) => ({ ...command, correlationData: `${batch}:${i}` })) });
    this.client.publish(CONTROL_TOPIC, payload, { qos: 1 });
    return Promise.all(waits);
  }

  async close(): Promise<void> {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.resolve({ command: id, error: "the control channel closed" });
    }
    this.pending.clear();
    await this.client.endAsync(true);
  }
}
