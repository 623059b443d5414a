/**
 * The Mosquitto configuration Moat runs with. Every choice here is a security default (STACK.md §10):
 * client certificates verified against Moat's CA and CRL, the certificate's CN as user name and client
 * id, TLS 1.2+ with the cipher list of Moat's own listeners, no anonymous access, and the control
 * channel on a unix socket only (no TCP port a scan would find).
 */
import { TLS12_SUITES, TLS13_SUITES } from "../crypto/index.js";
import type { MosquittoSetup } from "./setup.js";

interface ConfPaths {
  dynsec: string;
  caFile: string;
  crlFile: string;
  socket: string;
  certFile: string;
  keyFile: string;
}

/** A path inside the config: Mosquitto reads the rest of the line, so line breaks are refused. */
function path(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`a path with a line break cannot go into mosquitto.conf: ${JSON.stringify(value)}`);
  return value;
}

export function renderMosquittoConf(setup: MosquittoSetup, paths: ConfPaths): string {
  return [
    "# Written by `moat mosquitto setup`; `moat serve` (broker.mode = mosquitto) runs Mosquitto with it.",
    "# Edit with care: Moat keeps clients and roles in step through the dynamic-security plugin.",
    "per_listener_settings false",
    "allow_anonymous false",
    // Sessions, subscriptions and retained messages survive a restart of Mosquitto.
    "persistence true",
    `persistence_location ${path(setup.dir)}/`,
    // stderr is unbuffered: moat serve reads each line as it is written (connects, disconnects, failures).
    "log_dest stderr",
    "log_timestamp false",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
    `plugin ${path(setup.plugin)}`,
    `plugin_opt_config_file ${path(paths.dynsec)}`,
    "",
    "# Moat's control channel: a unix socket (mode 0770), password-authenticated by the plugin.",
    `listener 0 ${path(paths.socket)}`,
    "",
    "# Devices: MQTT over TLS with a client certificate from Moat's issuing CA.",
    `listener ${setup.port} ${setup.host}`,
    `certfile ${path(paths.certFile)}`,
    `keyfile ${path(paths.keyFile)}`,
    `cafile ${path(paths.caFile)}`,
    `crlfile ${path(paths.crlFile)}`,
    "require_certificate true",
    "use_identity_as_username true",
    "use_username_as_clientid true",
    "tls_version tlsv1.2",
    `ciphers ${TLS12_SUITES.join(":")}`,
    `ciphers_tls1.3 ${TLS13_SUITES.join(":")}`,
    "",
  ].join("\n");
}
