/**
 * The device the simulator drives: the device SDK's `MoatDevice` (src/device/), seen through the
 * calls the simulator makes. Every simulated device is a real SDK device: its own P-256 key and
 * folder, EST enrollment with a one-time token, mTLS MQTT, renewal and reconnect back-off.
 */
export interface FleetDevice {
  readonly certificate: { serial: string; notBefore: Date; notAfter: Date };
  connect(options?: { mqttUrl?: string }): Promise<void>;
  publish(topic: string, payload: string | Uint8Array, options?: { qos?: 0 | 1 }): Promise<void>;
  /** Resolves on a granted SUBACK, rejects (with a coded error) on a refused one. */
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<void>;
  renew(): Promise<unknown>;
  close(): Promise<void>;
}

/** A device's connection as the simulator times it. `stopped`: the SDK gave up for good (revoked, decommissioned). */
export type ConnectionEvent = { state: "connected" } | { state: "disconnected" } | { state: "stopped"; code: string };

/** How the simulator makes devices: the SDK, wired by the CLI. */
export interface DeviceFactory {
  enroll(input: { server: string; ca: string; deviceId: string; token: string; dir: string }): Promise<FleetDevice>;
  /** A later boot of an enrolled device: key, certificate, trust anchor and URLs from its folder. */
  open(input: { dir: string }): Promise<FleetDevice>;
  /** Reports the device's connection changes until the returned function is called. */
  watch(device: FleetDevice, listener: (event: ConnectionEvent) => void): () => void;
}
