// `npm run package`'s last step: the .vsix vsce built must carry a manifest (its
// extension/package.json) listing every command the extension registers and every setting it
// reads (src/contributions.ts), and nothing else, with the bundle and the chain schema beside
// it. Bundled by scripts/build.mjs --tests; run as `node dist-test/check-manifest.mjs <vsix>`.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

import { COMMANDS, SETTINGS } from '../src/contributions';

/** The entries of a zip file, by name (its central directory; stored or deflated). */
function unzip(zip: Buffer): Map<string, Buffer> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip file');
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  const entries = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(offset + 10);
    const size = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extra = zip.readUInt16LE(offset + 30);
    const comment = zip.readUInt16LE(offset + 32);
    const local = zip.readUInt32LE(offset + 42);
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + size);
    entries.set(name, method === 8 ? inflateRawSync(data) : data);
    offset += 46 + nameLength + extra + comment;
  }
  return entries;
}

function same(what: string, found: string[], wanted: string[]): string[] {
  const missing = wanted.filter((id) => !found.includes(id)).map((id) => `${what} ${id} is missing`);
  const extra = found.filter((id) => !wanted.includes(id)).map((id) => `${what} ${id} is not the extension's`);
  return [...missing, ...extra];
}

const path = process.argv[2];
if (!path) throw new Error('usage: check-manifest <file.vsix>');
const entries = unzip(readFileSync(path));
const manifest = entries.get('extension/package.json');
if (!manifest) throw new Error(`${path} has no extension/package.json`);
const contributes = JSON.parse(manifest.toString('utf8')).contributes as {
  commands: { command: string }[];
  configuration: { properties: Record<string, unknown> };
};
const problems = [
  ...same('command', contributes.commands.map((c) => c.command), Object.keys(COMMANDS)),
  ...same('setting', Object.keys(contributes.configuration.properties), Object.keys(SETTINGS)),
  ...['extension/dist/extension.cjs', 'extension/schemas/chain-definition.schema.json', 'extension.vsixmanifest']
    .filter((name) => !entries.has(name))
    .map((name) => `${name} is not packaged`),
];
if (problems.length > 0) {
  console.error(`check-manifest: ${path}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-manifest: ${path} lists the ${Object.keys(COMMANDS).length} commands and ${Object.keys(SETTINGS).length} settings`);
