// Moat's release version, in one place: `moat --version` prints it and GET /v1/info advertises it.
export const VERSION = "0.1.0";
