/**
 * Default logins to try. The seed guide's three come first; the rest are defaults that IoT
 * malware (Mirai and its successors) and vendor manuals made well known. Only these built-in pairs
 * are ever tried, and each service gets a bounded number of attempts.
 */
export interface Credential {
  username: string;
  password: string;
}

const pairs: ReadonlyArray<readonly [string, string]> = [
  // From the seed guide's IoTSecurityScanner.
  ["admin", "admin"],
  ["root", "root"],
  ["admin", "password"],
  // Common IoT defaults (cameras, DVRs, routers, gateways, single-board computers).
  ["admin", ""],
  ["root", ""],
  ["admin", "1234"],
  ["admin", "12345"],
  ["root", "12345"],
  ["root", "admin"],
  ["root", "default"],
  ["root", "xc3511"],
  ["root", "vizxv"],
  ["root", "888888"],
  ["user", "user"],
  ["guest", "guest"],
  ["support", "support"],
  ["ubnt", "ubnt"],
  ["pi", "raspberry"],
  ["admin", "admin123"],
  ["service", "service"],
];

export const DEFAULT_CREDENTIALS: readonly Credential[] = Object.freeze(pairs.map(([username, password]) => Object.freeze({ username, password })));
