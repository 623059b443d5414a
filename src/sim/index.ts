// The fleet simulator's door (`moat sim`, `moat demo`): simulated devices built on the device SDK,
// driven against a running Moat through its API and MQTT broker. It loads no server code; what it may
// do to a server beyond the API (restart its broker, release OTA campaigns) comes in as ServerControl.
export { AdminApi, type AuditEventView, type ServerInfo } from "./admin-api.js";
export type { ConnectionEvent, DeviceFactory, FleetDevice } from "./fleet-device.js";
export { Fleet, newRunId, sleep, type FleetOptions, type SimulatedDevice } from "./fleet.js";
export type { CampaignView, OtaOperator, Scenario, ScenarioContext, ServerControl } from "./scenario.js";
export { SCENARIOS, SCENARIO_NAMES, checkScenario, runSimulation, type ScenarioName, type SimulationOptions, type SimulationSummary } from "./runner.js";
export { LatencyRecorder, RunStats, errorCodeOf } from "./stats.js";
export { sdkDeviceFactory } from "./sdk-factory.js";
export { runDemo, type DemoFacts } from "./demo.js";
