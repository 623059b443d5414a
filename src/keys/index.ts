export { Envelope, parseEnvelopeHeader, type EnvelopeHeader } from "./envelope.js";
export { softwareKek, singleKekProvider, type Kek, type KekProvider } from "./kek.js";
export { createKekFile, fileKekProvider, envKekProvider, KEK_FILE } from "./file-provider.js";
