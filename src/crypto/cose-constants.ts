/** COSE numbers Moat uses (IANA "COSE Header Parameters" and "COSE Algorithms" registries). */

/** CBOR tags for the COSE message types, RFC 9052 §2. */
export const COSE_TAG = { Encrypt0: 16, Sign1: 18 } as const;

/** Common header labels, RFC 9052 §3.1. */
export const HEADER = {
  alg: 1,
  crit: 2,
  contentType: 3,
  kid: 4,
  iv: 5,
  partialIv: 6,
  /**
   * Moat's per-message sequence number (uint), protected header. Private-use label: the IANA
   * registry reserves integers below -65536 for private use (RFC 9052 §16.2). It is listed in
   * `crit` so a receiver that cannot enforce replay protection must reject the message.
   */
  moatSequence: -65537,
  /**
   * Moat's topic hint: the first 8 bytes of SHA-256(topic), protected header. The topic itself is
   * the external AAD; the hint only lets the receiver tell "sent to another topic" from "tampered"
   * (both fail the AEAD tag the same way). It reveals nothing the broker does not already see.
   */
  moatTopicHint: -65538,
} as const;

/** Algorithm identifiers, RFC 9053. */
export const ALG = {
  A256GCM: 3,
  ES256: -7,
  EdDSA: -8,
  /** ECDH-SS + HKDF-256, RFC 9053 §6.3.1: named in the KDF context of derived device keys. */
  ECDH_SS_HKDF_256: -27,
} as const;

export const A256GCM_KEY_BYTES = 32;
export const A256GCM_IV_BYTES = 12;
export const A256GCM_TAG_BYTES = 16;
export const TOPIC_HINT_BYTES = 8;

/** Largest COSE message Moat parses (MQTT payloads are bounded by the broker well below this). */
export const MAX_COSE_MESSAGE_BYTES = 16 * 1024 * 1024;
