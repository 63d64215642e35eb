/**
 * The definition leaving the composer and coming in: exported as a JSON or YAML file, imported
 * from one (`files.ts`), or published to the marketplace as a chain item (the marketplace's own
 * form, with the definition as its package).
 */
import { useState } from 'react';
import { Link } from 'react-router';

import { can, useSession } from '../auth/session';
import { PublishForm } from '../marketplace/PublishForm';
import { saveBlob } from '../ui/download';
import { type Format, exportText, fileName, importText } from './files';
import type { Json } from './graph';

const MEDIA_TYPES: Record<Format, string> = { json: 'application/json', yaml: 'application/yaml' };

export function ImportExport({ definition, onImport }: { definition: Json; onImport: (definition: Json, file: string) => void }) {
  const [problem, setProblem] = useState<string | null>(null);
  async function exported(format: Format) {
    const text = await exportText(definition, format);
    saveBlob(new Blob([text], { type: MEDIA_TYPES[format] }), fileName(definition, format));
  }
  async function imported(file: File | undefined) {
    if (!file) return;
    try {
      onImport(await importText(file.name, await file.text()), file.name);
      setProblem(null);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  }
  return (
    <div className="space-y-4">
      <div className="flex flex-wrap gap-2">
        <button type="button" className="btn-secondary" onClick={() => void exported('json')}>Export as JSON</button>
        <button type="button" className="btn-secondary" onClick={() => void exported('yaml')}>Export as YAML</button>
      </div>
      <div>
        <label className="label" htmlFor="import-file">Import a definition (a JSON or YAML file, at most 1 MiB)</label>
        <input id="import-file" type="file" className="text-sm" accept=".json,.yaml,.yml,application/json,application/yaml"
          aria-describedby={problem ? 'import-problem' : undefined}
          onChange={(event) => {
            void imported(event.target.files?.[0]);
            // The same file chosen again is read again.
            event.target.value = '';
          }} />
        {problem && <p id="import-problem" role="alert" className="mt-1 text-sm text-red-700 dark:text-red-300">{problem}</p>}
      </div>
    </div>
  );
}

export function Publish({ definition }: { definition: Json }) {
  const state = useSession();
  const [published, setPublished] = useState<string | null>(null);
  if (!can(state, 'market:publish')) return <p className="muted text-sm">Your role cannot publish to the marketplace.</p>;
  return (
    <div className="space-y-3">
      {published && (
        <p role="status" className="text-sm text-green-800 dark:text-green-200">
          Published. <Link className="link" to={`/marketplace/${published}`}>Open it in the marketplace</Link>
        </p>
      )}
      <PublishForm definition={definition} onPublished={setPublished} />
    </div>
  );
}
