import type { Fleet } from "./fleet.js";

/** What the simulator may do to the server beyond the API: only where it runs the server itself or opens its installation. */
export interface ServerControl {
  /** Stops the MQTT broker, waits `downMs`, starts it again on the same port (`--local` only). */
  restartBroker?(downMs: number): Promise<void>;
  /** OTA campaigns, through the installation (`--local`, or the server's data dir). */
  ota?: OtaOperator;
}

/** A campaign as the OTA scenario follows it. */
export interface CampaignView {
  status: string;
  pauseReason: string | null;
  /** Index of the highest opened stage. */
  stage: number;
  stages: number[];
  counts: Record<string, number>;
  /** Each device's stage index and status. */
  devices: { deviceId: string; stage: number; status: string }[];
}

export interface OtaOperator {
  /** Signs a small throwaway image and releases it to the group as a staged campaign; returns its id. */
  release(group: string, stages: string, maxFailureRate: string): Promise<string>;
  status(campaignId: string): Promise<CampaignView>;
  abort(campaignId: string): Promise<void>;
}

export interface ScenarioContext {
  fleet: Fleet;
  /** Messages per second per device. */
  rate: number;
  durationMs: number;
  control: ServerControl;
  /** A line for the person watching (progress on stderr). */
  note(message: string): void;
}

export interface Scenario {
  name: string;
  description: string;
  /** The least fleet size that shows the scenario. */
  minDevices: number;
  /** What it needs of ServerControl, checked before any device is created. */
  needs: (keyof ServerControl)[];
  run(ctx: ScenarioContext): Promise<Record<string, unknown>>;
}
