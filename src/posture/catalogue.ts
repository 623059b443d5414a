/**
 * Every posture check: a stable kebab-case id (reports, suppressions and compliance mappings name it;
 * never rename one), its usual severity, what it looks at and the fix. docs/compliance.md lists them.
 */
import type { Severity } from "./model.js";

export interface CheckDefinition {
  id: string;
  title: string;
  severity: Severity;
  /** `device`: findings about single devices, re-evaluated when one device changes; `installation`: the rest. */
  scope: "device" | "installation";
  fix: string;
}

export const CHECKS: readonly CheckDefinition[] = [
  { id: "ca-certificate-expiring", title: "CA certificate expiring or expired", severity: "high", scope: "installation", fix: "Rotate the issuing CA (moat ca rotate-issuer) or renew the root before it expires; devices must trust the new chain first." },
  { id: "ca-key-weak", title: "CA key or signature too weak", severity: "high", scope: "installation", fix: "Create a new CA hierarchy or issuing CA with ec-p256, ec-p384, rsa-3072 or ed25519 keys and re-issue device certificates under it." },
  { id: "ca-revoked-in-use", title: "Unusable CA still the issuer of active device certificates", severity: "critical", scope: "installation", fix: "Re-issue the affected devices' certificates under the active issuing CA (moat cert rotate), then revoke the old ones." },
  { id: "device-certificate-expiring", title: "Device certificate expiring (pki.expiryWindowDays)", severity: "medium", scope: "device", fix: "Renew the certificate (EST /simplereenroll from the device, or moat cert rotate DEVICE) before it expires." },
  { id: "device-certificate-old", title: "Device certificate older than posture.certificateMaxAgeDays", severity: "low", scope: "device", fix: "Rotate the device's key and certificate (moat cert rotate DEVICE, or re-enroll from the device with a new key)." },
  { id: "device-key-weak", title: "Device key or certificate signature too weak", severity: "high", scope: "device", fix: "Re-enroll the device with an ec-p256, ec-p384, rsa-3072 or ed25519 key and revoke the weak certificate." },
  { id: "device-certificate-shared", title: "Same public key or certificate on more than one device", severity: "high", scope: "device", fix: "Give each device its own key: re-enroll the devices with keys generated on the device, then revoke the shared certificates. Allowed (factories may do it), but one stolen key then speaks for all of them." },
  { id: "revoked-certificate-connected", title: "Revoked certificate still connected", severity: "critical", scope: "device", fix: "Check that the data-plane node follows the change feed (moat session list names the node); restart or isolate the node; the session must be closed." },
  { id: "client-id-conflict", title: "Conflicting client ids (session takeovers)", severity: "medium", scope: "device", fix: "Two endpoints use one identity: find the clone (the addresses are in the evidence), revoke its credential and re-enroll the genuine device." },
  { id: "role-overly-permissive", title: "Overly permissive role", severity: "high", scope: "installation", fix: "Anchor the rule on the device's own subtree (devices/${device.id}/…); never grant #, a leading +, $ topics or other devices' subtrees." },
  { id: "role-misconfigured", title: "Potential role misconfiguration (a rule that can never match, a deny that shadows nothing)", severity: "low", scope: "installation", fix: "Remove or correct the dead rule (moat role show ROLE); check that the deny names the topics it was meant to." },
  { id: "audit-log-failing", title: "Operator logging disabled or audit chain failing verification", severity: "critical", scope: "installation", fix: "Investigate the first bad sequence number (moat audit verify), restore the database from backup and compare with the exported checkpoints; set logLevel to info or higher." },
  { id: "plaintext-listener-enabled", title: "Plaintext MQTT listener enabled", severity: "high", scope: "installation", fix: "Unset broker.mqttPlainPort; connect every client over TLS (port broker.mqttPort)." },
  { id: "device-firmware-outdated", title: "Device below the group's minimum firmware security version", severity: "high", scope: "device", fix: "Roll out signed firmware at or above the minimum security version (moat ota) and quarantine devices that cannot update." },
  { id: "device-never-seen", title: "Active device never seen on the data plane", severity: "low", scope: "device", fix: "Confirm the device was deployed; suspend or decommission identities that are not in use (moat device suspend)." },
  { id: "device-silent", title: "Device silent for longer than its group's window", severity: "medium", scope: "device", fix: "Check the device; if it is gone, suspend its identity and revoke its certificate." },
  { id: "device-outside-allowed-network", title: "Device connected from outside its group's allowed networks", severity: "high", scope: "device", fix: "Find out why the device is on that network; if it is not the device, revoke its credential. Otherwise correct the group's allowed CIDRs." },
  { id: "kek-not-rotated", title: "KEK never rotated (older than posture.kekMaxAgeDays)", severity: "medium", scope: "installation", fix: "Rotate the key-encryption key: moat keys rotate, then moat keys retire when no envelope uses the old version." },
  { id: "root-ca-key-online", title: "Root CA key online", severity: "medium", scope: "installation", fix: "Export the root key to offline storage and remove it: moat ca offline-root (bring it back only to rotate the issuer)." },
  { id: "scanner-open-findings", title: "Open scanner findings on fleet addresses", severity: "high", scope: "installation", fix: "Fix each finding on the device (close the port, disable the default login, require TLS), then scan again (moat scan --store)." },
  { id: "segmentation-stale", title: "Segmentation not compiled or out of date", severity: "medium", scope: "installation", fix: "Compile the policy again (moat segment compile POLICY --out COMPILED) and load it on the router (nft -f)." },
];

const BY_ID = new Map(CHECKS.map((check) => [check.id, check]));

export function checkDefinition(id: string): CheckDefinition | undefined {
  return BY_ID.get(id);
}

export const DEVICE_SCOPED_CHECKS: readonly string[] = CHECKS.filter((c) => c.scope === "device").map((c) => c.id);
