/**
 * TUF metadata as the device receives it: the device's OtaClient updates from a real Moat TUF
 * repository through an in-memory fetcher that serves one repository file mutated per case (the
 * timestamp, snapshot, targets, or a mutated root offered as the next root version). OtaClient.update
 * never throws for a refused update; the property is that it answers, and that a failure's reason is
 * a documented code, never INTERNAL (which it reports when an uncoded error reached it).
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { BaseFetcher } from "tuf-js";
// tuf-js stops probing for newer roots only on its own DownloadHTTPError (404), which its door does not re-export.
import { DownloadHTTPError } from "tuf-js/dist/error.js";
import { OtaClient, provisionTufRoot } from "../../src/device/index.js";
import { ERROR_CODES } from "../../src/errors.js";
import { FileSecurityCounter } from "../../src/firmware/verify.js";
import { createTestRepository, publishRelease, signedManifestFor, signingSetup, writeImage } from "../firmware-fixtures.js";
import { bytesInput, jsonText } from "./mutations.js";
import type { FuzzHarness, FuzzTarget } from "./targets.js";

const BASE = "https://repository.invalid/tuf/";

/** Serves the repository's files from memory, one of them replaced by the case's bytes. */
class MutatingFetcher extends BaseFetcher {
  replace: { path: string; bytes: Uint8Array } | null = null;
  constructor(private readonly files: Map<string, Buffer>) {
    super();
  }
  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const path = url.startsWith(BASE) ? url.slice(BASE.length) : url;
    const bytes = this.replace?.path === path ? this.replace.bytes : this.files.get(path);
    if (bytes === undefined) throw new DownloadHTTPError(`GET ${path} answered 404`, 404);
    return new Response(Buffer.from(bytes)).body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

export const tufMetadataTarget: FuzzTarget = {
  name: "tuf-metadata",
  entry: "device door OtaClient.update: TUF metadata from the repository (tuf-js), then the manifest check",
  async setup() {
    const dir = mkdtempSync(join(tmpdir(), "moat-fuzz-tuf-"));
    const repoDir = join(dir, "repo");
    const { repo } = await createTestRepository(repoDir);
    const fw = await signingSetup();
    const image = writeImage(dir, "image.bin", 512);
    const release = await publishRelease(repo, image, await signedManifestFor(image, fw));
    const files = new Map<string, Buffer>();
    for (const folder of ["metadata", "targets"])
      for (const entry of readdirSync(join(repoDir, folder), { recursive: true, withFileTypes: true }))
        if (entry.isFile()) files.set(`${folder}/${join(entry.parentPath, entry.name).slice(join(repoDir, folder).length + 1)}`, readFileSync(join(entry.parentPath, entry.name)));
    const metadata = [...files.keys()].filter((p) => p.startsWith("metadata/") && p.endsWith(".json"));
    const rootVersions = metadata.filter((p) => /^metadata\/\d+\.root\.json$/.test(p)).map((p) => Number(/(\d+)\.root/.exec(p)![1]));
    const latestRoot = Math.max(...rootVersions);
    const home = join(dir, "device");
    await provisionTufRoot(join(home, "tuf"), files.get(`metadata/${latestRoot}.root.json`)!);
    const fetcher = new MutatingFetcher(files);
    // The device is for other hardware, so even an intact release is refused after TUF and nothing is installed.
    const client = new OtaClient({
      hardwareId: "other-hardware",
      repositoryUrl: BASE,
      metadataDir: join(home, "tuf"),
      slotsDir: join(home, "slots"),
      trustedRoots: [fw.rootKey],
      counter: new FileSecurityCounter(join(home, "security-counter")),
      fetcher,
    });
    // Targets: each metadata file, and a forged next root (mutated from the current one).
    const paths = [...metadata.filter((p) => !p.endsWith(".root.json") || p === `metadata/${latestRoot}.root.json`), `metadata/${latestRoot + 1}.root.json`];
    const sampleFor = (path: string) => (files.get(path) ?? files.get(`metadata/${latestRoot}.root.json`)!).toString("utf8");
    const input = fc.constantFrom(...paths).chain((path) =>
      fc.oneof(jsonText([sampleFor(path)]).map((text) => Buffer.from(text)), bytesInput([Buffer.from(sampleFor(path))])).map((bytes) => ({ path, bytes })),
    );
    return {
      input,
      run: async (c: { path: string; bytes: Buffer }) => {
        fetcher.replace = c;
        const outcome = await client.update(release);
        if (outcome.status !== "failed" || outcome.reason === undefined) throw new Error(`update ${outcome.status} on other hardware`);
        if (outcome.reason === "INTERNAL" || !(outcome.reason in ERROR_CODES)) throw new Error(`update failed with ${outcome.reason}, not a documented code`);
      },
      close: () => rm(dir, { recursive: true, force: true }),
    } satisfies FuzzHarness<{ path: string; bytes: Buffer }> as FuzzHarness;
  },
};
