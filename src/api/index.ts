export { buildApi, type ApiOptions } from "./server.js";
export type { ApiServices, ApiSettings } from "./services.js";
export { problemOf, sendProblem, type Problem } from "./problem.js";
export { actorOf } from "./auth.js";
export { PkiHttpServer, type PkiServerOptions } from "./pki-server.js";
