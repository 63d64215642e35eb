// The files of a run, from the .tar.gz the gateway sends (`GET /api/artifacts/{run}`): gunzip,
// then the tar's regular files (ustar, with GNU long names and pax paths), each bounded.

import { gunzipSync } from 'node:zlib';

import { MAX_ARCHIVE_BYTES } from './api';

/** Files read from one archive at most: a generated project has a few hundred. */
export const MAX_ARCHIVE_FILES = 10_000;

export interface ArchiveFile {
  path: string;
  data: Uint8Array;
}

const BLOCK = 512;

export function readTarGz(gzipped: Uint8Array): ArchiveFile[] {
  // The unpacked size is bounded too: a small archive can inflate a thousandfold.
  const tar = gunzipSync(gzipped, { maxOutputLength: MAX_ARCHIVE_BYTES });
  const files: ArchiveFile[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const size = parseInt(text(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const start = offset + BLOCK;
    if (Number.isNaN(size) || start + size > tar.length) throw new Error('a truncated tar archive');
    const body = tar.subarray(start, start + size);
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = new TextDecoder().decode(body).replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x') {
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(body))?.[1] ?? longName;
      continue;
    }
    const prefix = text(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100));
    longName = undefined;
    if (type !== '0' && type !== '\0') continue;
    if (files.length === MAX_ARCHIVE_FILES) {
      throw new Error(`the archive has more than ${MAX_ARCHIVE_FILES} files`);
    }
    files.push({ path: name.replace(/^\.\//, ''), data: body });
  }
  return files;
}

function text(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
}
