import { describe, expect, it } from 'vitest';

import { gunzip, untar } from './tar';

/** A ustar header and body, as `tar` writes them. */
function entry(name: string, content: string, type = '0'): Uint8Array {
  const body = new TextEncoder().encode(content);
  const header = new Uint8Array(512);
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
  put(0, name);
  put(124, body.length.toString(8).padStart(11, '0'));
  put(156, type);
  put(257, 'ustar');
  const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
  padded.set(body);
  const out = new Uint8Array(512 + padded.length);
  out.set(header);
  out.set(padded, 512);
  return out;
}

function archive(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = parts.reduce((sum, part) => sum + part.length, 0) + 1024;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

describe('untar', () => {
  it('lists regular files with their content, skipping folders', () => {
    const files = untar(
      archive(entry('backend/', '', '5'), entry('backend/app/main.py', 'print("hi")\n'), entry('README.md', '# x')),
    );
    expect(files.map((file) => file.path)).toEqual(['backend/app/main.py', 'README.md']);
    expect(new TextDecoder().decode(files[0]!.bytes)).toBe('print("hi")\n');
  });

  it('takes a GNU long name for the entry after it', () => {
    const long = `${'deep/'.repeat(30)}file.txt`;
    const files = untar(archive(entry('././@LongLink', `${long}\0`, 'L'), entry('truncated', 'x')));
    expect(files.map((file) => file.path)).toEqual([long]);
  });

  it('reads a gzipped archive', async () => {
    const plain = new Blob([archive(entry('a.txt', 'A'))]);
    const gz = await new Response(plain.stream().pipeThrough(new CompressionStream('gzip'))).blob();
    const files = untar(await gunzip(gz));
    expect(files.map((file) => file.path)).toEqual(['a.txt']);
  });
});
