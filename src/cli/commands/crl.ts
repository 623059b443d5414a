import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import type { Command } from "commander";
import { toPem } from "../../pki/index.js";
import { withApp } from "../context.js";

/** `moat crl`: the current CRL of the issuing CA (or another CA). */
export function register(program: Command): void {
  program
    .command("crl")
    .description("print the current CRL (PEM label X509 CRL; re-signed first if due)")
    .option("--ca <ca>", "whose CRL: issuing (default), root, or a CA serial", "issuing")
    .option("--der", "DER instead of PEM")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExamples:\n  moat crl > moat.crl.pem && openssl crl -in moat.crl.pem -noout -text\n  moat crl --ca root --der --out root.crl\n")
    .action(async (o: { ca: string; der?: boolean; out?: string }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const state = await app.pki.crls.current(o.ca);
        const body = o.der ? state.der : Buffer.from(toPem(state.der, "X509 CRL"));
        if (o.out) writeFileAtomicSync(o.out, body, { mode: 0o644 });
        else process.stdout.write(body);
        process.stderr.write(`CRL number ${state.number}, thisUpdate ${state.thisUpdate}, nextUpdate ${state.nextUpdate}\n`);
      }),
    );
}
