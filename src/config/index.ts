export { loadConfig, loadClientEnvironment, envNameOf, type ClientEnvironment, type MoatConfig, type LoadOptions } from "./load.js";
export { SETTINGS, type SettingPath, type SettingSpec } from "./schema.js";
export { listenFailed } from "./listen-error.js";
