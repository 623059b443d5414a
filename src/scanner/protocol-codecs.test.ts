import { X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { certificateSignatureAlgorithm } from "./certificate-signature.js";
import { parseResponseHead } from "./http-probe.js";
import { connackReturnCode, decodePacket, encodeConnect, encodeSubscribe, publishTopic } from "./mqtt-packets.js";
import { decodeTelnet } from "./telnet-probe.js";
import { decodeCoap, encodeCoapGet } from "./udp-probe.js";

describe("MQTT packets", () => {
  it("encodes CONNECT per MQTT 3.1.1 §3.1", () => {
    const packet = encodeConnect({ clientId: "c", username: "u", password: "p", keepAliveSeconds: 30 });
    expect(packet.toString("hex")).toBe("1013" + "00044d515454" + "04" + "c2" + "001e" + "000163" + "000175" + "000170");
    expect(encodeSubscribe(7, ["#"]).toString("hex")).toBe("8206" + "0007" + "000123" + "00");
  });

  it("decodes CONNACK and PUBLISH, waits on partial input, rejects bad lengths", () => {
    expect(connackReturnCode(decodePacket(Buffer.from("20020005", "hex")) as never)).toBe(5);
    expect(decodePacket(Buffer.from("2002", "hex"))).toBeNull();
    expect(publishTopic(decodePacket(Buffer.from("3005000161ff00", "hex").subarray(0, 7)) as never)).toBe("a");
    expect(decodePacket(Buffer.from("30ffffffff01", "hex"))).toBe("malformed");
    // 16 MiB remaining length: bigger than the scanner will buffer.
    expect(decodePacket(Buffer.from("3080808008", "hex"))).toBe("malformed");
  });
});

describe("Telnet negotiation", () => {
  it("answers DO with WONT and WILL ECHO with DO, and strips commands from the text", () => {
    const input = Buffer.from([255, 251, 1, 255, 253, 31, 255, 250, 24, 1, 255, 240, ...Buffer.from("login: ")]);
    const decoded = decodeTelnet(input);
    expect(decoded.text.toString()).toBe("login: ");
    expect([...decoded.replies]).toEqual([255, 253, 1, 255, 252, 31]);
    expect(decoded.options).toEqual(["WILL ECHO", "DO NAWS"]);
    expect(decoded.consumed).toBe(input.length);
  });

  it("leaves an incomplete command for the next read", () => {
    expect(decodeTelnet(Buffer.from([65, 255, 253])).consumed).toBe(1);
  });
});

describe("CoAP", () => {
  it("encodes GET /.well-known/core per RFC 7252 §3 and decodes a 2.05 answer", () => {
    const token = Buffer.from("a1b2", "hex");
    const request = encodeCoapGet(0x1234, token, [".well-known", "core"]);
    expect(request.toString("hex")).toBe("42011234a1b2" + "bb2e77656c6c2d6b6e6f776e" + "04636f7265");
    const answer = Buffer.concat([Buffer.from("62451234a1b2c128ff", "hex"), Buffer.from("</sensors/temp>")]);
    const decoded = decodeCoap(answer)!;
    expect(decoded).toMatchObject({ type: 2, code: "2.05", messageId: 0x1234 });
    expect(decoded.payload.toString()).toBe("</sensors/temp>");
    expect(decodeCoap(Buffer.from("02451234", "hex"))).toBeNull(); // version 0
    expect(decodeCoap(Buffer.from("6045123415", "hex"))).toBeNull(); // option runs past the end
  });
});

describe("HTTP response head", () => {
  it("parses status and headers, waits for the blank line, rejects non-HTTP", () => {
    const head = parseResponseHead(Buffer.from('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'));
    expect(head).toMatchObject({ status: 401 });
    expect((head as { headers: Map<string, string> }).headers.get("www-authenticate")).toBe('Basic realm="cam"');
    expect(parseResponseHead(Buffer.from("HTTP/1.1 200 OK\r\n"))).toBeNull();
    expect(parseResponseHead(Buffer.from("SSH-2.0-x\r\n"))).toBe("malformed");
  });
});

describe("certificate signature algorithm", () => {
  it("reads the outer algorithm of an openssl-made certificate", () => {
    const pem = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=sig", "-days", "1", "-sha384"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    expect(certificateSignatureAlgorithm(new X509Certificate(pem).raw)).toBe("ecdsa-with-SHA384");
    expect(certificateSignatureAlgorithm(Buffer.from("3003020100", "hex"))).toBeNull();
  });
});
