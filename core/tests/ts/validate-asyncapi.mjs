// Validates AsyncAPI documents with the real @asyncapi/parser: prints every diagnostic and
// exits non-zero if any document has an error (warnings and hints are shown but allowed).
// Usage: node validate-asyncapi.mjs FILE...
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate-asyncapi.mjs FILE...");
  process.exit(2);
}

const parser = new Parser();
let failed = false;
for (const file of files) {
  const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"));
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? ` at ${d.path.join(".")}` : "";
    console.log(`${file}: ${SEVERITY[d.severity] ?? d.severity} ${d.code}: ${d.message}${where}`);
  }
  if (errors.length > 0 || document === undefined) {
    failed = true;
    console.log(`${file}: INVALID (${errors.length} error(s))`);
  } else {
    const version = document.version();
    const channels = document.channels().length;
    const operations = document.operations().length;
    const messages = document.allMessages().length;
    console.log(
      `${file}: valid AsyncAPI ${version}: ${channels} channel(s), ${operations} operation(s), ${messages} message(s)`,
    );
  }
}
process.exit(failed ? 1 : 0);
