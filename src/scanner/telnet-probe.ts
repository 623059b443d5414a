/**
 * Telnet: option negotiation (RFC 854, RFC 855) and a login attempt. The scanner refuses every
 * option the server asks it to enable (DO → WONT) and lets the server echo and suppress go-ahead
 * (WILL ECHO/SGA → DO), which is what a plain login needs.
 */
import { withSession, type Endpoint, type ProbeContext } from "./probe-context.js";
import type { SocketSession } from "./socket-session.js";

const IAC = 255;
const DONT = 254;
const DO = 253;
const WONT = 252;
const WILL = 251;
const SB = 250;
const SE = 240;
const ECHO = 1;
const SUPPRESS_GO_AHEAD = 3;

const OPTION_NAMES: Record<number, string> = {
  0: "BINARY",
  1: "ECHO",
  3: "SGA",
  5: "STATUS",
  6: "TIMING-MARK",
  24: "TTYPE",
  31: "NAWS",
  32: "TSPEED",
  33: "LFLOW",
  34: "LINEMODE",
  35: "XDISPLOC",
  36: "OLD-ENVIRON",
  37: "AUTHENTICATION",
  38: "ENCRYPT",
  39: "NEW-ENVIRON",
};

const VERB_NAMES: Record<number, string> = { [DO]: "DO", [DONT]: "DONT", [WILL]: "WILL", [WONT]: "WONT" };

export interface TelnetDecoded {
  /** Data bytes with every command removed. */
  text: Buffer;
  /** Our answers to the server's requests. */
  replies: Buffer;
  /** The server's requests, e.g. "WILL ECHO", "DO NAWS". */
  options: string[];
  /** Bytes decoded; an incomplete command at the end is left for the next read. */
  consumed: number;
}

/** Splits a Telnet byte stream into data and commands, answering DO/WILL requests. */
export function decodeTelnet(input: Buffer): TelnetDecoded {
  const text: number[] = [];
  const replies: number[] = [];
  const options: string[] = [];
  let i = 0;
  while (i < input.length) {
    const byte = input[i]!;
    if (byte !== IAC) {
      text.push(byte);
      i++;
      continue;
    }
    if (i + 1 >= input.length) break;
    const command = input[i + 1]!;
    if (command === IAC) {
      text.push(IAC); // escaped 0xFF data byte
      i += 2;
    } else if (command >= WILL && command <= DONT) {
      if (i + 2 >= input.length) break;
      const option = input[i + 2]!;
      options.push(`${VERB_NAMES[command]} ${OPTION_NAMES[option] ?? String(option)}`);
      if (command === DO) replies.push(IAC, WONT, option);
      else if (command === WILL) replies.push(IAC, option === ECHO || option === SUPPRESS_GO_AHEAD ? DO : DONT, option);
      i += 3;
    } else if (command === SB) {
      // Subnegotiation runs to IAC SE (RFC 855); skip it whole or wait for the rest.
      let end = -1;
      for (let j = i + 2; j + 1 < input.length; j++) {
        if (input[j] === IAC && input[j + 1] === SE) {
          end = j + 2;
          break;
        }
      }
      if (end < 0) break;
      i = end;
    } else {
      i += 2; // NOP, GA, AYT … carry no option byte
    }
  }
  return { text: Buffer.from(text), replies: Buffer.from(replies), options, consumed: i };
}

/** A Telnet conversation over a session: negotiates as bytes arrive and keeps the decoded text. */
export class TelnetConversation {
  text = "";
  readonly options: string[] = [];

  constructor(private readonly session: SocketSession) {}

  private pump(): void {
    const decoded = decodeTelnet(this.session.buffer);
    if (decoded.consumed === 0) return;
    this.session.consume(decoded.consumed);
    if (decoded.replies.length) this.session.write(decoded.replies);
    this.options.push(...decoded.options);
    this.text += decoded.text.toString("latin1");
  }

  /** Waits until the text received since `from` matches `pattern`; false on timeout or close. */
  async waitForText(pattern: RegExp, timeoutMs: number, from = 0): Promise<boolean> {
    return this.session.waitFor(() => {
      this.pump();
      return pattern.test(this.text.slice(from));
    }, timeoutMs);
  }

  sendLine(line: string): void {
    this.session.write(`${line}\r\n`);
  }
}

const USER_PROMPT = /(login|user(name)?)\s*:\s*$/i;
const PASSWORD_PROMPT = /pass(word|code)?\s*:\s*$/i;
const LOGIN_FAILED = /(incorrect|invalid|fail|denied|wrong|bad password|not allowed|login\s*:|user(name)?\s*:)/i;
const LOGIN_OK = /([#$>%]\s*$|welcome|last login|busybox|built-in shell)/i;

export type LoginOutcome = "accepted" | "rejected" | "no-prompt";

/** Tries one user name and password at the login prompt. */
export async function telnetLogin(ctx: ProbeContext, endpoint: Endpoint, username: string, password: string): Promise<LoginOutcome> {
  const outcome = await withSession(ctx, endpoint, async (session) => {
    const telnet = new TelnetConversation(session);
    const prompt = /(login|user(name)?|pass(word|code)?)\s*:\s*$/i;
    if (!(await telnet.waitForText(prompt, ctx.bannerWaitMs + ctx.readTimeoutMs))) return "no-prompt" as const;
    if (USER_PROMPT.test(telnet.text)) {
      const mark = telnet.text.length;
      telnet.sendLine(username);
      if (!(await telnet.waitForText(PASSWORD_PROMPT, ctx.readTimeoutMs, mark))) return "rejected" as const;
    }
    const mark = telnet.text.length;
    telnet.sendLine(password);
    // Read what follows the password until the server either complains or gives a prompt.
    await telnet.waitForText(new RegExp(`${LOGIN_FAILED.source}|${LOGIN_OK.source}`, "i"), ctx.readTimeoutMs, mark);
    const after = telnet.text.slice(mark);
    return !LOGIN_FAILED.test(after) && LOGIN_OK.test(after) ? ("accepted" as const) : ("rejected" as const);
  });
  return outcome ?? "no-prompt";
}

export { PASSWORD_PROMPT, USER_PROMPT };
