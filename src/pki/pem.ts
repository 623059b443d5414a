/** PEM (RFC 7468) encode/decode with strict labels. */

export function toPem(der: Buffer, label: string): string {
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** All PEM blocks with `label` in `text`, decoded; other labels are ignored. */
export function fromPemAll(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  const pattern = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, "g");
  for (const match of text.matchAll(pattern)) out.push(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64"));
  return out;
}

/** The first PEM block with one of `labels`, or undefined. */
export function fromPem(text: string, ...labels: string[]): Buffer | undefined {
  for (const label of labels) {
    const [first] = fromPemAll(text, label);
    if (first) return first;
  }
  return undefined;
}
