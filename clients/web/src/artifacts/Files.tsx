/** A run's generated files: a browsable tree, each file's text, and the archive to download. */
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';

import { download } from '../api/client';
import { saveBlob } from '../ui/download';
import { ProblemMessage } from '../ui/states';
import { type TarFile, gunzip, untar } from './tar';

export interface ArtifactSummary {
  path: string;
  size_bytes: number;
}

/** Paths grouped by folder, folders first, for the tree. */
function folders(paths: ArtifactSummary[]): [string, ArtifactSummary[]][] {
  const groups = new Map<string, ArtifactSummary[]>();
  for (const artifact of [...paths].sort((a, b) => a.path.localeCompare(b.path))) {
    const slash = artifact.path.lastIndexOf('/');
    const folder = slash === -1 ? '' : artifact.path.slice(0, slash);
    groups.set(folder, [...(groups.get(folder) ?? []), artifact]);
  }
  return [...groups.entries()];
}

export function Files({ workspace, artifacts }: { workspace: string; artifacts: ArtifactSummary[] }) {
  const [selected, setSelected] = useState<string | null>(null);
  const archive = useMutation({
    mutationFn: async () => {
      const blob = await download(`/api/artifacts/${encodeURIComponent(workspace)}`);
      return { blob, files: untar(await gunzip(blob)) };
    },
  });
  const files = archive.data?.files;
  const open: TarFile | undefined = files?.find((file) => file.path === selected);
  if (artifacts.length === 0) return <p className="muted text-sm">This run wrote no files.</p>;
  return (
    <div>
      <div className="mb-3 flex flex-wrap gap-2">
        <button
          type="button"
          className="btn-secondary"
          disabled={archive.isPending}
          onClick={() =>
            archive.mutate(undefined, {
              onSuccess: ({ blob }) => saveBlob(blob, `${workspace}.tar.gz`),
            })
          }
        >
          Download artifacts (.tar.gz)
        </button>
        {!files && (
          <button type="button" className="btn-secondary" disabled={archive.isPending} onClick={() => archive.mutate()}>
            Open files
          </button>
        )}
      </div>
      <ProblemMessage error={archive.error} />
      <div className="grid grid-cols-1 gap-3 lg:grid-cols-3">
        <ul aria-label="Generated files" tabIndex={0} className="max-h-96 overflow-auto text-sm">
          {folders(artifacts).map(([folder, items]) => (
            <li key={folder || '.'}>
              {folder && <span className="muted block pt-1 font-mono text-xs">{folder}/</span>}
              <ul className={folder ? 'ml-3' : ''}>
                {items.map((artifact) => (
                  <li key={artifact.path}>
                    <button
                      type="button"
                      disabled={!files}
                      aria-pressed={selected === artifact.path}
                      onClick={() => setSelected(artifact.path)}
                      className="w-full truncate rounded px-1 text-left font-mono hover:bg-slate-100 disabled:cursor-default disabled:hover:bg-transparent aria-pressed:bg-indigo-100 dark:hover:bg-slate-800 dark:aria-pressed:bg-indigo-900"
                    >
                      {artifact.path.slice(artifact.path.lastIndexOf('/') + 1)}
                      <span className="muted ml-2 text-xs">{artifact.size_bytes} B</span>
                    </button>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
        <div className="lg:col-span-2">
          {open ? (
            <pre aria-label={`Content of ${open.path}`} tabIndex={0} className="max-h-96 overflow-auto rounded-md bg-slate-100 p-3 text-xs dark:bg-slate-800">
              {new TextDecoder().decode(open.bytes)}
            </pre>
          ) : (
            <p className="muted text-sm">{files ? 'Pick a file to read it.' : 'Open the files to read them here.'}</p>
          )}
        </div>
      </div>
    </div>
  );
}
