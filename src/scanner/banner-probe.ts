/** The first thing a scanner does on an open port: connect, say nothing, and see who speaks first. */
import { withSession, type Endpoint, type ProbeContext } from "./probe-context.js";
import { printable } from "./socket-session.js";
import { TelnetConversation, USER_PROMPT, PASSWORD_PROMPT } from "./telnet-probe.js";

export interface BannerResult {
  kind: "telnet" | "ssh" | "ftp" | "smtp" | "text" | "silent";
  banner?: string;
  telnetOptions?: string[];
}

/** How long to keep reading after the first bytes, to get the whole greeting line or prompt. */
const GREETING_TAIL_MS = 300;

/** Classifies a greeting (RFC 4253 §4.2 for SSH, RFC 959 §4.2 and RFC 5321 §4.2 for the 220 replies). */
export function classifyGreeting(text: string, telnetOptions: readonly string[], port: number): BannerResult["kind"] {
  if (telnetOptions.length > 0) return "telnet";
  if (/^SSH-\d+\.\d+-/.test(text)) return "ssh";
  if (/^220[ -]/.test(text)) {
    if (/smtp|esmtp|mail/i.test(text) || port === 25 || port === 587) return "smtp";
    return "ftp";
  }
  if (USER_PROMPT.test(text.trimEnd()) || PASSWORD_PROMPT.test(text.trimEnd())) return "telnet";
  return "text";
}

/** Null when the port could not be connected to. */
export async function readBanner(ctx: ProbeContext, endpoint: Endpoint): Promise<BannerResult | null> {
  return withSession(ctx, endpoint, async (session) => {
    const telnet = new TelnetConversation(session);
    const spoke = await session.waitFor((buffer) => buffer.length > 0, ctx.bannerWaitMs);
    if (!spoke) return { kind: "silent" } satisfies BannerResult;
    await telnet.waitForText(/\n|:\s*$/, GREETING_TAIL_MS);
    const kind = classifyGreeting(telnet.text, telnet.options, endpoint.port);
    const banner = printable(Buffer.from(telnet.text.trim(), "latin1"));
    return { kind, ...(banner ? { banner } : {}), ...(telnet.options.length ? { telnetOptions: [...telnet.options] } : {}) } satisfies BannerResult;
  });
}
