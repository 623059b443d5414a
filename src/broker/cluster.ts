/**
 * Scale-out over Redis: aedes shares subscriptions, retained messages and QoS 1/2 state through
 * mqemitter-redis and aedes-persistence-redis, and enforcement changes are broadcast on a pub/sub
 * channel so every node applies them at once (each node still follows the change feed, so a missed
 * broadcast is caught up by polling).
 */
import { Redis } from "ioredis";
import mqemitterRedis from "mqemitter-redis";
import aedesPersistenceRedis from "aedes-persistence-redis";
import { MoatError } from "../errors.js";
import { type Change, parseChange } from "../change-feed.js";

export interface ClusterParts {
  mq: unknown;
  persistence: { setup(broker: unknown): Promise<void>; destroy(): Promise<void> };
  channel: EnforcementChannel;
  close(): Promise<void>;
}

interface Broadcast {
  node: string;
  change: Change;
}

/** Publishes and receives change-feed entries between broker nodes. */
export class EnforcementChannel {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  private listener: ((change: Change) => void) | null = null;

  constructor(url: string, namespace: string, private readonly nodeId: string) {
    this.channel = `${namespace}:broker:enforcement`;
    this.pub = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.sub = new Redis(url, { lazyConnect: true });
    this.sub.on("message", (channel: string, message: string) => {
      if (channel !== this.channel || !this.listener) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        return;
      }
      const b = parsed as { node?: unknown; change?: Record<string, unknown> };
      if (b.node === this.nodeId || typeof b.change !== "object" || b.change === null) return;
      // A broadcast is checked like a feed row: an unknown kind or misshapen data is not acted on.
      const change = parseChange({ seq: b.change.seq, kind: b.change.kind, subject: b.change.subject, data: b.change.data, createdAt: b.change.createdAt });
      if (change) this.listener(change);
    });
    // ioredis reports connection trouble as events; reconnecting is its job.
    this.pub.on("error", () => undefined);
    this.sub.on("error", () => undefined);
  }

  async start(listener: (change: Change) => void): Promise<void> {
    this.listener = listener;
    try {
      await Promise.all([this.pub.connect(), this.sub.connect()]);
      await this.sub.subscribe(this.channel);
    } catch (err) {
      await this.close();
      throw new MoatError("BROKER_REDIS_UNREACHABLE", `cannot reach Redis for broker scale-out: ${(err as Error).message}`, { cause: err });
    }
  }

  publish(change: Change): void {
    const message: Broadcast = { node: this.nodeId, change };
    this.pub.publish(this.channel, JSON.stringify(message)).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.listener = null;
    this.sub.disconnect();
    this.pub.disconnect();
  }
}

/**
 * Connects one node to the deployment's Redis: first the enforcement channel (which fails fast with
 * BROKER_REDIS_UNREACHABLE and leaves nothing behind), then the message bus and persistence for aedes.
 */
export async function connectCluster(
  url: string,
  namespace: string,
  nodeId: string,
  onBroadcast: (change: Change) => void,
  onError: (err: Error) => void,
): Promise<ClusterParts> {
  const channel = new EnforcementChannel(url, namespace, nodeId);
  await channel.start(onBroadcast);
  const parsed = new URL(url);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  const redisOptions = {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
  };
  const mq = mqemitterRedis({ connectionString: url } as never) as unknown as { close(cb: () => void): void; state: { on(event: "error", l: (err: Error) => void): void } };
  // mqemitter-redis re-emits connection errors on `state`; unheard, an EventEmitter error would throw.
  mq.state.on("error", onError);
  const persistence = aedesPersistenceRedis(redisOptions);
  return {
    mq,
    persistence,
    channel,
    close: async () => {
      await channel.close();
      await persistence.destroy().catch(() => undefined);
    },
  };
}
