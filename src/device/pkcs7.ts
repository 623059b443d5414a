// EST answers with a certs-only CMS SignedData (RFC 7030 §4.1.3, §4.2.3; RFC 5652 §5). The device
// needs only the certificates out of it, read with the shared strict DER reader.
import { children, decodeOid, DerError, expectTag, readSingle } from "../crypto/index.js";
import { MoatError } from "../errors.js";

const SIGNED_DATA = "1.2.840.113549.1.7.2";

/** The DER certificates inside an EST response body (base64 of a certs-only PKCS#7). */
export function certificatesOfEstBody(body: string): Buffer[] {
  const compact = body.replace(/\s+/g, "");
  if (compact.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", "the EST answer is not base64");
  try {
    const contentInfo = children(readSingle(Buffer.from(compact, "base64"), 0x30));
    if (decodeOid(expectTag(contentInfo[0], 0x06, "contentType")) !== SIGNED_DATA) throw new DerError("not a SignedData");
    const signedData = children(expectTag(children(expectTag(contentInfo[1], 0xa0, "content"))[0], 0x30, "SignedData"));
    const certificates = signedData.find((element) => element.tag === 0xa0);
    if (!certificates) throw new DerError("no certificates");
    return children(certificates).map((certificate) => Buffer.from(expectTag(certificate, 0x30, "certificate").encoded));
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `the EST answer is not a certs-only PKCS#7: ${(error as Error).message}`, { cause: error });
  }
}
