// Bench-only preload for a `moat serve` under measurement (node --expose-gc --import this-file):
// SIGUSR2 runs a full garbage collection, so the bench samples RSS after GC. No route, no production code.
process.on("SIGUSR2", () => globalThis.gc?.());
