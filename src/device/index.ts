// The device SDK's door. Device code loads no server package (see ARCHITECTURE.md): it imports only
// the crypto, firmware and policy doors, and firmware's door is itself free of server packages.
// --- OTA (issue 7) ---
export { OtaClient, provisionTufRoot, type OtaClientOptions, type OtaOutcome, type OtaStatusReport, type OtaUpdateRequest } from "./ota-client.js";
export { AbSlots, type SlotName, type SlotState } from "./ab-slots.js";
export { TufHttpsFetcher, type TufFetcherOptions } from "./tuf-https-fetcher.js";
