/**
 * Reads the artifacts archive (`GET /api/artifacts/{run}`: a .tar.gz) in the browser, so the
 * generated files can be browsed without unpacking anything by hand. Plain ustar and GNU long
 * names; the gateway's archives hold regular files and folders only.
 */
export interface TarFile {
  path: string;
  bytes: Uint8Array;
}

const BLOCK = 512;

function field(header: Uint8Array, offset: number, length: number): string {
  const bytes = header.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** The regular files of an uncompressed tar. */
export function untar(archive: Uint8Array): TarFile[] {
  const files: TarFile[] = [];
  let offset = 0;
  let longName: string | null = null;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(header, 345, 155);
    const name = field(header, 0, 100);
    const body = archive.subarray(offset + BLOCK, offset + BLOCK + size);
    if (type === 'L') {
      longName = new TextDecoder().decode(body).replace(/\0+$/, '');
    } else {
      const path = longName ?? (prefix ? `${prefix}/${name}` : name);
      longName = null;
      if (type === '0' || type === '\0') files.push({ path: path.replace(/^\.\//, ''), bytes: body.slice() });
    }
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}

export async function gunzip(blob: Blob): Promise<Uint8Array> {
  const stream = blob.stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
