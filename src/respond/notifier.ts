/**
 * Notification targets and deliveries: signed webhooks (Standard Webhooks), syslog over TCP/TLS and
 * the broker's MQTT alert topic. Every message is a delivery row first, then sent; a failed attempt is
 * retried with exponential backoff, and after the last attempt the row is a dead letter that
 * `moat notify dead-letters` lists and `moat notify redeliver` sends again. Webhook secrets are
 * generated here, sealed by the envelope and shown once.
 */
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { SecurityEventInput } from "../audit/index.js";
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import { TARGET_NAME } from "./playbook.js";
import type { AlertTopicPublisher, DeliveryRecord, DeliveryStatus, NotifyTargetRecord, RespondStore, TargetKind } from "./ports.js";
import { formatSyslog, isLoopbackHost, sendSyslog } from "./syslog.js";
import { generateWebhookSecret, webhookHeaders, webhookSecretKey } from "./webhook-signature.js";

export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export type NotifySeverity = (typeof SEVERITIES)[number];
const rank = (severity: string) => Math.max(0, SEVERITIES.indexOf(severity as NotifySeverity));

/** The broker topic prefix alerts are published under (`moat/alerts/<severity>`); see docs/detect.md. */
export const DEFAULT_ALERT_TOPIC_PREFIX = "moat/alerts";
const TOPIC_PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}(\/[A-Za-z0-9_-]{1,32}){0,4}$/;

export interface SecretSealer {
  seal(plaintext: Buffer, aad: string): Promise<Buffer>;
  open(blob: Buffer, aad: string): Promise<Buffer>;
}

export interface NotifierOptions {
  /** Delay before the second attempt; each later one waits 4× longer (capped by maxDelayMs). */
  retryBaseMs?: number;
  maxDelayMs?: number;
  /** Attempts before a delivery becomes a dead letter. */
  maxAttempts?: number;
  timeoutMs?: number;
  now?: () => number;
  onError?: (error: unknown) => void;
}

/** A target as listed: never its secret. */
export interface NotifyTargetView {
  name: string;
  kind: TargetKind;
  config: Record<string, unknown>;
  minSeverity: string;
  createdAt: string;
  createdBy: string;
}

export interface AddWebhookInput {
  name: string;
  url: string;
  minSeverity?: string;
  /** Trust anchors (PEM) for an https URL whose certificate the system store does not know. */
  caPem?: string;
  /** An existing `whsec_…` secret (read from a file by the CLI); otherwise one is generated. */
  secret?: string;
}

export interface AddSyslogInput {
  name: string;
  host: string;
  port: number;
  transport: "tls" | "tcp";
  caPem?: string;
  facility?: number;
  minSeverity?: string;
}

export interface AddMqttInput {
  name: string;
  prefix?: string;
  minSeverity?: string;
}

/** What a delivery carries: the Standard Webhooks payload shape `{ type, timestamp, data }`. */
export interface Notification {
  type: string;
  severity: string;
  data: Record<string, unknown>;
}

const secretAad = (name: string) => `notify-secret:${name}`;

function checkName(name: unknown): string {
  if (typeof name !== "string" || !TARGET_NAME.test(name)) throw new MoatError("NOTIFY_TARGET_INVALID", `target name ${JSON.stringify(name)} is not 1-64 of a-z 0-9 . _ -`);
  return name;
}

function checkSeverity(severity: string | undefined): string {
  const value = severity ?? "low";
  if (!(SEVERITIES as readonly string[]).includes(value)) throw new MoatError("NOTIFY_TARGET_INVALID", `severity ${JSON.stringify(value)} is not one of ${SEVERITIES.join(", ")}`);
  return value;
}

function checkPem(pem: string | undefined): string | undefined {
  if (pem === undefined) return undefined;
  if (!/-----BEGIN CERTIFICATE-----/.test(pem) || pem.length > 64 * 1024) throw new MoatError("NOTIFY_TARGET_INVALID", "the CA file is not PEM certificates (at most 64 KiB)");
  return pem;
}

/** https anywhere; http only to loopback (flagged as insecure), since the body is signed but not secret. */
function checkWebhookUrl(text: string): { url: string; insecure: boolean } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MoatError("NOTIFY_TARGET_INVALID", `webhook URL ${JSON.stringify(text.slice(0, 200))} is not a URL`);
  }
  if (url.username || url.password) throw new MoatError("NOTIFY_TARGET_INVALID", "a webhook URL must not carry credentials; the signature authenticates Moat");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (url.protocol === "https:") return { url: url.toString(), insecure: false };
  if (url.protocol === "http:" && isLoopbackHost(host)) return { url: url.toString(), insecure: true };
  throw new MoatError("NOTIFY_TARGET_INVALID", `webhook URL must be https (http only to loopback): ${url.protocol}//${url.host}`);
}

function view(target: NotifyTargetRecord): NotifyTargetView {
  return { name: target.name, kind: target.kind, config: target.config, minSeverity: target.minSeverity, createdAt: target.createdAt, createdBy: target.createdBy };
}

export class Notifier {
  private readonly retryBaseMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly inFlight = new Set<string>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private publisher: AlertTopicPublisher | null = null;
  /** Where failures of background deliveries go; `moat serve` sets its logger here. */
  onError: (error: unknown) => void;

  constructor(
    private readonly store: RespondStore,
    private readonly sealer: SecretSealer,
    private readonly options: NotifierOptions = {},
  ) {
    this.retryBaseMs = options.retryBaseMs ?? 2_000;
    this.maxDelayMs = options.maxDelayMs ?? 3_600_000;
    this.maxAttempts = options.maxAttempts ?? 6;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
  }

  /** The broker's server-side publish, wired by `moat serve` (MQTT targets need it). */
  attachPublisher(publisher: AlertTopicPublisher | null): void {
    this.publisher = publisher;
  }

  // --- targets ---

  /** Adds a webhook target; returns the signing secret, which is shown once and stored only sealed. */
  async addWebhook(input: AddWebhookInput, actor: string): Promise<{ target: NotifyTargetView; secret: string }> {
    const name = checkName(input.name);
    const { url, insecure } = checkWebhookUrl(input.url);
    const secret = input.secret ?? generateWebhookSecret();
    webhookSecretKey(secret);
    const caPem = checkPem(input.caPem);
    const record: NotifyTargetRecord = {
      name,
      kind: "webhook",
      config: { url, ...(insecure ? { insecure: true } : {}), ...(caPem ? { caPem } : {}) },
      sealedSecret: await this.sealer.seal(Buffer.from(secret), secretAad(name)),
      minSeverity: checkSeverity(input.minSeverity),
      createdAt: new Date(this.now()).toISOString(),
      createdBy: actor,
    };
    await this.insertTarget(record, actor, insecure);
    return { target: view(record), secret };
  }

  async addSyslog(input: AddSyslogInput, actor: string): Promise<NotifyTargetView> {
    const name = checkName(input.name);
    if (typeof input.host !== "string" || input.host.length === 0 || input.host.length > 253 || !/^[A-Za-z0-9.:-]+$/.test(input.host))
      throw new MoatError("NOTIFY_TARGET_INVALID", `syslog host ${JSON.stringify(input.host)} is not a host name or address`);
    if (!Number.isSafeInteger(input.port) || input.port < 1 || input.port > 65_535) throw new MoatError("NOTIFY_TARGET_INVALID", "syslog port must be 1-65535");
    if (input.transport !== "tls" && input.transport !== "tcp") throw new MoatError("NOTIFY_TARGET_INVALID", "syslog transport is tls or tcp");
    if (input.transport === "tcp" && !isLoopbackHost(input.host)) throw new MoatError("NOTIFY_TARGET_INVALID", `plain TCP syslog is allowed to loopback only; use --transport tls for ${input.host}`);
    const facility = input.facility ?? 10;
    if (!Number.isSafeInteger(facility) || facility < 0 || facility > 23) throw new MoatError("NOTIFY_TARGET_INVALID", "syslog facility must be 0-23");
    const caPem = checkPem(input.caPem);
    const record: NotifyTargetRecord = {
      name,
      kind: "syslog",
      config: { host: input.host, port: input.port, transport: input.transport, facility, ...(caPem ? { caPem } : {}) },
      sealedSecret: null,
      minSeverity: checkSeverity(input.minSeverity),
      createdAt: new Date(this.now()).toISOString(),
      createdBy: actor,
    };
    await this.insertTarget(record, actor, input.transport === "tcp");
    return view(record);
  }

  async addMqtt(input: AddMqttInput, actor: string): Promise<NotifyTargetView> {
    const name = checkName(input.name);
    const prefix = input.prefix ?? DEFAULT_ALERT_TOPIC_PREFIX;
    if (!TOPIC_PREFIX.test(prefix)) throw new MoatError("NOTIFY_TARGET_INVALID", `topic prefix ${JSON.stringify(prefix)} must be 1-5 levels of A-Z a-z 0-9 _ - (no wildcards, no $)`);
    const record: NotifyTargetRecord = { name, kind: "mqtt", config: { prefix }, sealedSecret: null, minSeverity: checkSeverity(input.minSeverity), createdAt: new Date(this.now()).toISOString(), createdBy: actor };
    await this.insertTarget(record, actor, false);
    return view(record);
  }

  private async insertTarget(record: NotifyTargetRecord, actor: string, insecure: boolean): Promise<void> {
    await this.store.transact(async (uow) => {
      if (await uow.targets.get(record.name)) throw new MoatError("NOTIFY_TARGET_EXISTS", `a notification target named ${record.name} exists`);
      await uow.targets.insert(record);
      const { caPem: _ca, ...config } = record.config;
      await uow.events.append({ type: "notify.target_added", severity: insecure ? "high" : "info", actor, subject: record.name, data: { kind: record.kind, config, minSeverity: record.minSeverity, ...(insecure ? { insecure: true } : {}) } });
    });
  }

  async listTargets(): Promise<NotifyTargetView[]> {
    return (await this.store.targets.list()).map(view);
  }

  async removeTarget(name: string, actor: string): Promise<void> {
    checkName(name);
    await this.store.transact(async (uow) => {
      if (!(await uow.targets.delete(name))) throw new MoatError("NOTIFY_TARGET_NOT_FOUND", `no notification target ${name}`);
      await uow.events.append({ type: "notify.target_removed", severity: "info", actor, subject: name, data: {} });
    });
  }

  // --- deliveries ---

  /**
   * Queues `notification` for the named targets (null: every target at or above its least severity)
   * and tries each at once; returns the delivery ids.
   */
  async enqueue(notification: Notification, targetNames: readonly string[] | null): Promise<string[]> {
    const targets = await this.store.targets.list();
    const chosen =
      targetNames === null ? targets.filter((t) => rank(notification.severity) >= rank(t.minSeverity)) : targets.filter((t) => targetNames.length === 0 || targetNames.includes(t.name));
    if (chosen.length === 0) return [];
    const at = new Date(this.now()).toISOString();
    const payload = JSON.stringify({ type: notification.type, timestamp: at, data: notification.data });
    const rows: DeliveryRecord[] = chosen.map((t) => ({
      id: `msg_${randomUUID().replace(/-/g, "")}`,
      target: t.name,
      eventType: notification.type,
      payload,
      attempts: 0,
      status: "pending",
      nextAttemptAt: at,
      lastError: null,
      createdAt: at,
      updatedAt: at,
    }));
    await this.store.transact(async (uow) => {
      for (const row of rows) await uow.deliveries.insert(row);
    });
    for (const row of rows) void this.attempt(row.id).catch((error: unknown) => this.onError(error));
    return rows.map((r) => r.id);
  }

  /** Runs due retries every `intervalMs` (the server does; a CLI process sends only what it is asked to). */
  start(intervalMs = 1_000): () => void {
    if (this.timer) return () => this.stop();
    this.timer = setInterval(() => void this.runDue().catch((error: unknown) => this.onError(error)), intervalMs);
    this.timer.unref();
    return () => this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async runDue(): Promise<number> {
    const due = await this.store.deliveries.due(new Date(this.now()).toISOString(), 100);
    await Promise.all(due.map((d) => this.attempt(d.id)));
    return due.length;
  }

  /**
   * One attempt of a pending delivery. Success marks it delivered; a failure schedules the next attempt
   * (`retryBaseMs` × 4^(attempts-1), capped) or, after `maxAttempts`, makes it a dead letter with a
   * `notify.dead_letter` event. Returns the row as it stands afterwards.
   */
  async attempt(id: string): Promise<DeliveryRecord | null> {
    if (this.inFlight.has(id)) return null;
    this.inFlight.add(id);
    try {
      const delivery = await this.store.deliveries.get(id);
      if (!delivery || delivery.status !== "pending") return delivery;
      // Another node (or process) may be sending it: the lease outlasts one attempt's timeout.
      if (!(await this.store.deliveries.claim(id, delivery.nextAttemptAt, new Date(this.now() + this.timeoutMs * 2).toISOString()))) return null;
      const target = await this.store.targets.get(delivery.target);
      let error: string | null = null;
      if (!target) error = `target ${delivery.target} was removed`;
      else
        try {
          await this.send(target, delivery);
        } catch (caught) {
          error = (caught instanceof Error ? caught.message : String(caught)).slice(0, 500);
        }
      const attempts = delivery.attempts + 1;
      const at = this.now();
      const next: DeliveryRecord = { ...delivery, attempts, updatedAt: new Date(at).toISOString(), lastError: error };
      if (error === null) Object.assign(next, { status: "delivered", nextAttemptAt: null });
      else if (attempts >= this.maxAttempts || !target) Object.assign(next, { status: "dead", nextAttemptAt: null });
      else Object.assign(next, { nextAttemptAt: new Date(at + Math.min(this.maxDelayMs, this.retryBaseMs * 4 ** (attempts - 1))).toISOString() });
      await this.store.transact(async (uow) => {
        await uow.deliveries.update(next);
        if (next.status === "dead")
          await uow.events.append({ type: "notify.dead_letter", severity: "medium", actor: "system", subject: delivery.target, data: { deliveryId: id, eventType: delivery.eventType, attempts, error } });
      });
      return next;
    } finally {
      this.inFlight.delete(id);
    }
  }

  async deadLetters(limit?: number): Promise<DeliveryRecord[]> {
    return this.store.deliveries.list({ status: "dead", limit: pageLimit(limit, 100) });
  }

  async deliveries(filter: { status?: DeliveryStatus; limit?: number } = {}): Promise<DeliveryRecord[]> {
    return this.store.deliveries.list({ ...(filter.status ? { status: filter.status } : {}), limit: pageLimit(filter.limit, 100) });
  }

  /** Sends a dead letter again now (same body, fresh timestamp and signature); it stays pending for retries if this attempt fails. */
  async redeliver(id: string, actor: string): Promise<DeliveryRecord> {
    const restarted = await this.store.transact(async (uow) => {
      const delivery = await uow.deliveries.get(id);
      if (!delivery) throw new MoatError("NOTIFY_DELIVERY_NOT_FOUND", `no delivery ${id}`);
      if (delivery.status !== "dead") throw new MoatError("NOTIFY_DELIVERY_NOT_DEAD", `delivery ${id} is ${delivery.status}; only dead letters are redelivered`);
      const next: DeliveryRecord = { ...delivery, status: "pending", attempts: 0, nextAttemptAt: new Date(this.now()).toISOString(), updatedAt: new Date(this.now()).toISOString() };
      await uow.deliveries.update(next);
      await uow.events.append({ type: "notify.redelivered", severity: "info", actor, subject: delivery.target, data: { deliveryId: id } });
      return next;
    });
    return (await this.attempt(restarted.id)) ?? restarted;
  }

  private async send(target: NotifyTargetRecord, delivery: DeliveryRecord): Promise<void> {
    const parsed = JSON.parse(delivery.payload) as { data?: Record<string, unknown>; type?: string };
    const severity = typeof parsed.data?.severity === "string" ? parsed.data.severity : "medium";
    switch (target.kind) {
      case "webhook": {
        if (!target.sealedSecret) throw new Error("the webhook target has no secret");
        const secret = (await this.sealer.open(target.sealedSecret, secretAad(target.name))).toString();
        await postJson(String(target.config.url), delivery.payload, webhookHeaders(secret, delivery.id, delivery.payload, this.now()), target.config.caPem as string | undefined, this.timeoutMs);
        return;
      }
      case "syslog": {
        const params: Record<string, string> = { deliveryId: delivery.id };
        for (const key of ["alertId", "rule", "actionId", "action", "status"]) if (typeof parsed.data?.[key] === "string") params[key] = parsed.data[key] as string;
        const subject = parsed.data?.subject as { kind?: unknown; id?: unknown } | undefined;
        if (subject && typeof subject.id === "string") params.subject = `${String(subject.kind)}:${subject.id}`;
        const line = formatSyslog({ severity, type: delivery.eventType, params, text: delivery.payload }, Number(target.config.facility ?? 10));
        await sendSyslog(
          {
            host: String(target.config.host),
            port: Number(target.config.port),
            transport: target.config.transport === "tcp" ? "tcp" : "tls",
            ...(typeof target.config.caPem === "string" ? { caPem: target.config.caPem } : {}),
            timeoutMs: this.timeoutMs,
          },
          [line],
        );
        return;
      }
      case "mqtt": {
        if (!this.publisher) throw new MoatError("NOTIFY_TARGET_UNAVAILABLE", "MQTT alert targets are delivered by a running moat serve (with the broker enabled)");
        await this.publisher.publish(`${String(target.config.prefix)}/${severity}`, Buffer.from(delivery.payload));
        return;
      }
    }
  }
}

/** One POST; 2xx is success, anything else (redirects included: they are not followed) a failure. */
function postJson(url: string, body: string, headers: Record<string, string>, caPem: string | undefined, timeoutMs: number): Promise<void> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "user-agent": "moat-webhooks" },
        timeout: timeoutMs,
        ...(target.protocol === "https:" ? { minVersion: "TLSv1.2" as const, ...(caPem ? { ca: caPem } : {}) } : {}),
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`webhook answered HTTP ${status}`));
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`webhook did not answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

export function notificationOf(event: SecurityEventInput): Notification {
  return { type: event.type, severity: event.severity ?? "medium", data: { ...(event.data ?? {}), severity: event.severity ?? (event.data?.severity as string | undefined) ?? "medium" } };
}
