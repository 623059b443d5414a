/**
 * Detection as `moat serve` runs it: the engine fed by the raw event stream and the broker's traffic
 * port, the rules reloaded from the change feed, a tick every second, and a metric snapshot every
 * minute (and at stop) so a restart resumes its windows and baselines. The composition root builds it
 * from ports; nothing here knows the broker, identity or the store.
 */
import type { Change, ChangeFeed } from "../change-feed.js";
import type { AlertService } from "./alerts.js";
import { DetectionEngine, type AlertSignal, type DetectionEvent, type DetectionPorts } from "./engine.js";
import type { DetectRuleService } from "./rule-service.js";
import { MetricSnapshots } from "./snapshots.js";

export interface DetectionLog {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface DetectionRuntimeOptions {
  rules: DetectRuleService;
  alerts: Pick<AlertService, "raise">;
  ports: DetectionPorts;
  /** The raw in-process event stream (`AuditService.onEvent`). */
  events: { onEvent(listener: (event: DetectionEvent) => void): () => void };
  feed: Pick<ChangeFeed, "subscribe">;
  /** Where the metric snapshot lives (a file in the data dir). */
  snapshotPath: string;
  snapshotEveryMs?: number;
  log: DetectionLog;
  now?: () => number;
}

export class DetectionRuntime {
  private constructor(
    readonly engine: DetectionEngine,
    private readonly stop: () => Promise<void>,
  ) {}

  static async start(options: DetectionRuntimeOptions): Promise<DetectionRuntime> {
    const { log } = options;
    const snapshots = new MetricSnapshots(options.snapshotPath);
    const restored = await snapshots.load();
    if (restored) log.info({ devices: restored.store.size, takenAt: new Date(restored.takenAt).toISOString() }, "detect: metric state restored from the last snapshot");
    // Alerts are written one after another, so two firings of one rule and subject never race to open two alerts.
    let writing: Promise<unknown> = Promise.resolve();
    const raise = (signal: AlertSignal) => {
      writing = writing.then(() => options.alerts.raise(signal)).catch((error: unknown) => log.error({ err: error, rule: signal.rule, subject: signal.subject }, "detect: could not store an alert"));
    };
    const engine = new DetectionEngine({
      rules: await options.rules.effective(),
      ports: options.ports,
      onAlert: raise,
      onError: (error) => log.error({ err: error }, "detect: a lookup failed"),
      ...(options.now ? { now: options.now } : {}),
      ...(restored ? { metrics: restored.store } : {}),
    });
    await engine.reloadGroups();
    const stopEvents = options.events.onEvent((event) => engine.ingest(event));
    const stopFeed = options.feed.subscribe((change) => applyChange(engine, options, change));
    const ticker = setInterval(() => engine.tick(), 1000);
    ticker.unref();
    const save = () => snapshots.save(engine.metrics, Date.now()).catch((error: unknown) => log.error({ err: error }, "detect: could not write the metric snapshot"));
    const snapshotTimer = setInterval(() => void save(), options.snapshotEveryMs ?? 60_000);
    snapshotTimer.unref();
    return new DetectionRuntime(engine, async () => {
      stopEvents();
      stopFeed();
      clearInterval(ticker);
      clearInterval(snapshotTimer);
      await save();
      await writing;
    });
  }

  /** Stops listening, writes a last snapshot and waits for the alerts still being written. */
  close(): Promise<void> {
    return this.stop();
  }
}

/** The feed rows detection follows: rules, group settings, and device changes (a group may have moved). */
function applyChange(engine: DetectionEngine, options: DetectionRuntimeOptions, change: Change): void {
  const failed = (error: unknown) => options.log.error({ err: error, kind: change.kind, seq: change.seq }, "detect: could not apply a change");
  if (change.kind === "detect.rules") options.rules.effective().then((rules) => engine.setRules(rules), failed);
  else if (change.kind === "group.settings") engine.reloadGroups().catch(failed);
  else if (change.kind === "device.updated") engine.forgetDevice(change.subject);
}
