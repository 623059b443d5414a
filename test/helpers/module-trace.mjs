// `node --import ./test/helpers/module-trace.mjs …` writes every ES module the process resolves, one
// URL a line, to the file named by MOAT_MODULE_TRACE: tests check what a command really loads.
import { register } from "node:module";

register(
  "data:text/javascript," +
    encodeURIComponent(`
import { appendFileSync } from "node:fs";
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + "\\n");
  return result;
}`),
  { data: { file: process.env.MOAT_MODULE_TRACE } },
);
