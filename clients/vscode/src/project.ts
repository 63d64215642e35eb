// A run's files written into a folder of the workspace: every path checked to stay inside it
// (an archive names its own paths), the files that exist already told apart so the user is
// asked before any is overwritten.
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';

import type { ArchiveFile } from './archive';

export interface Plan {
  /** Paths (relative, `/`-separated) that do not exist yet. */
  create: string[];
  /** Paths of existing files the archive has too. */
  overwrite: string[];
  /** Paths refused: absolute, leaving the folder, or where a folder is. */
  refused: string[];
}

/** The path inside `root` a relative archive path names, or undefined if it would leave it. */
export function inside(root: string, path: string): string | undefined {
  if (path === '' || isAbsolute(path) || path.includes('\\') || path.includes('\0')) return undefined;
  const relative = normalize(path);
  if (relative === '..' || relative.startsWith(`..${sep}`) || relative === '.') return undefined;
  return join(root, relative);
}

export async function plan(root: string, files: readonly ArchiveFile[]): Promise<Plan> {
  const result: Plan = { create: [], overwrite: [], refused: [] };
  for (const file of files) {
    const target = inside(root, file.path);
    if (!target) {
      result.refused.push(file.path);
      continue;
    }
    const existing = await stat(target).catch(() => undefined);
    if (!existing) result.create.push(file.path);
    else if (existing.isFile()) result.overwrite.push(file.path);
    else result.refused.push(file.path);
  }
  return result;
}

/**
 * Writes the planned files: those to create, and those to overwrite only when `overwrite` says
 * so. Answers the paths written.
 */
export async function write(
  root: string,
  files: readonly ArchiveFile[],
  planned: Plan,
  overwrite: boolean,
): Promise<string[]> {
  const allowed = new Set([...planned.create, ...(overwrite ? planned.overwrite : [])]);
  const written: string[] = [];
  for (const file of files) {
    const target = inside(root, file.path);
    if (!target || !allowed.has(file.path)) continue;
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.data);
    written.push(file.path);
  }
  return written;
}
