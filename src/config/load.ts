import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { MoatError } from "../errors.js";
import { SETTINGS, type SettingPath, type SettingSpec } from "./schema.js";

type ValueOf<S extends SettingSpec> = S["type"]["kind"] extends "int" | "port"
  ? number
  : S["type"]["kind"] extends "bool"
    ? boolean
    : S["type"]["kind"] extends "list"
      ? readonly string[]
      : string;
type Nullable<S extends SettingSpec, V> = S["default"] extends null ? V | null : V;

/** The validated, frozen configuration; access settings by path: `config["broker.mqttPort"]`. */
export type MoatConfig = {
  readonly [K in SettingPath]: Nullable<(typeof SETTINGS)[K], ValueOf<(typeof SETTINGS)[K]>>;
};

export interface LoadOptions {
  /** Values from CLI flags, by setting path. Undefined entries are ignored. */
  flags?: Partial<Record<SettingPath, unknown>>;
  /** The environment to read (only this module reads process.env). */
  env?: NodeJS.ProcessEnv;
  /** Working directory used to resolve a relative data dir. */
  cwd?: string;
}

export function envNameOf(path: string): string {
  return "MOAT_" + path.replace(/\./g, "_").replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function invalid(path: string, source: string, allowed: string, value: unknown): MoatError {
  const shown = (SETTINGS[path as SettingPath] as SettingSpec | undefined)?.secret ? "<secret>" : JSON.stringify(value);
  return new MoatError("CONFIG_INVALID", `setting '${path}' (from ${source}) is ${shown}; allowed: ${allowed}`, {
    detail: { setting: path, source, allowed },
  });
}

function coerce(path: SettingPath, spec: SettingSpec, raw: unknown, source: string): unknown {
  if (raw === null || raw === "") {
    if (spec.default === null || (spec.type.kind === "port" && spec.type.optional)) return null;
    throw invalid(path, source, "a value (it may not be empty)", raw);
  }
  const t = spec.type;
  switch (t.kind) {
    case "string": {
      if (typeof raw !== "string") throw invalid(path, source, "a string", raw);
      if (t.pattern && !t.pattern.test(raw)) throw invalid(path, source, t.allowed ?? String(t.pattern), raw);
      return raw;
    }
    case "int":
    case "port": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      const [min, max] = t.kind === "port" ? [0, 65535] : [t.min, t.max];
      if (!Number.isInteger(n) || n < min || n > max) throw invalid(path, source, `an integer from ${min} to ${max}`, raw);
      return n;
    }
    case "enum": {
      if (typeof raw !== "string" || !t.values.includes(raw)) throw invalid(path, source, t.values.join(" | "), raw);
      return raw;
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw invalid(path, source, "true | false", raw);
    }
    case "url": {
      let url: URL;
      try {
        url = new URL(String(raw));
      } catch {
        throw invalid(path, source, `a URL (${t.protocols.join(", ")})`, raw);
      }
      if (!t.protocols.includes(url.protocol)) throw invalid(path, source, `a URL with scheme ${t.protocols.join(" or ")}`, raw);
      return String(raw);
    }
    case "list": {
      const list = Array.isArray(raw) ? raw : String(raw).split(",").map((s) => s.trim()).filter(Boolean);
      if (!list.every((item) => typeof item === "string")) throw invalid(path, source, "a list of strings", raw);
      return Object.freeze([...list]);
    }
  }
}

function flattenYaml(doc: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return out;
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) flattenYaml(value, path, out);
    else out[path] = value;
  }
  return out;
}

function readYaml(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (error) {
    throw new MoatError("CONFIG_INVALID", `${file} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  const flat = flattenYaml(doc);
  for (const path of Object.keys(flat)) {
    if (!(path in SETTINGS)) throw new MoatError("CONFIG_INVALID", `${file}: unknown setting '${path}'`, { detail: { setting: path } });
  }
  return flat;
}

/** Loads and validates the configuration once. A bad value throws CONFIG_INVALID naming the setting and what is allowed. */
export function loadConfig(options: LoadOptions = {}): MoatConfig {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const cwd = options.cwd ?? process.cwd();
  const pick = (path: SettingPath): [unknown, string] | undefined => {
    if (flags[path] !== undefined) {
      if ((SETTINGS[path] as SettingSpec).secret) throw new MoatError("CONFIG_INVALID", `setting '${path}' is a secret and is accepted only from ${envNameOf(path)}`);
      return [flags[path], "flag"];
    }
    const name = envNameOf(path);
    if (env[name] !== undefined) return [env[name], name];
    return undefined;
  };
  const dataDirRaw = pick("dataDir")?.[0] ?? SETTINGS.dataDir.default;
  const dataDir = isAbsolute(String(dataDirRaw)) ? String(dataDirRaw) : resolve(cwd, String(dataDirRaw));
  const yaml = readYaml(join(dataDir, "moat.yaml"));
  const result: Record<string, unknown> = {};
  for (const [path, spec] of Object.entries(SETTINGS) as [SettingPath, SettingSpec][]) {
    const chosen = pick(path);
    if (chosen) result[path] = coerce(path, spec, chosen[0], chosen[1]);
    else if (path in yaml) {
      if (spec.secret) throw new MoatError("CONFIG_INVALID", `setting '${path}' is a secret and may not be written in moat.yaml; use ${envNameOf(path)}`);
      result[path] = coerce(path, spec, yaml[path], "moat.yaml");
    } else result[path] = spec.default;
  }
  result.dataDir = dataDir;
  return Object.freeze(result) as MoatConfig;
}

/**
 * What a client of a running Moat (`moat sim`) reads from its environment: the API URL, the admin
 * token, the CA bundle file and the MQTT URL. Flags win over these; the token has no flag (a secret
 * on the command line shows in `ps`), only MOAT_TOKEN or a token file. Empty values count as unset.
 */
export interface ClientEnvironment {
  url?: string;
  token?: string;
  ca?: string;
  mqttUrl?: string;
}

export function loadClientEnvironment(env: NodeJS.ProcessEnv = process.env): ClientEnvironment {
  const pick = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  const result: ClientEnvironment = {};
  const url = pick("MOAT_URL");
  const token = pick("MOAT_TOKEN");
  const ca = pick("MOAT_CA");
  const mqttUrl = pick("MOAT_MQTT_URL");
  if (url) result.url = url;
  if (token) result.token = token;
  if (ca) result.ca = ca;
  if (mqttUrl) result.mqttUrl = mqttUrl;
  return result;
}
