/**
 * Publishes a chain or a custom agent: a new item, or (with `item`) a new version of one. The
 * package is the chain definition or the agent definition, as JSON, or (with `definition`, from
 * the composer) the chain being composed; the server checks it with the orchestrator or
 * agent-runner, and its errors land on the fields they name.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';

import { ProblemError } from '../api/problem';
import { ProblemMessage } from '../ui/states';
import { type Item, type ItemKind, publish } from './queries';

const EXAMPLE_CHAIN = JSON.stringify({ agents: ['hello_world', 'hello_world'], mode: 'sequential' }, null, 2);

/** A slug from a chain's name: lower case, runs of anything else as one `-`. */
function slugOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
}

export function PublishForm({ item, definition, onPublished }: {
  item?: Item;
  /** The chain to publish as it is, in place of a package typed in. */
  definition?: Record<string, unknown>;
  onPublished: (itemId: string) => void;
}) {
  const queryClient = useQueryClient();
  const [packageError, setPackageError] = useState<string | null>(null);
  const mutation = useMutation({
    mutationFn: publish,
    onSuccess: (published) => {
      void queryClient.invalidateQueries({ queryKey: ['market'] });
      if (published.item) onPublished(published.item.id);
    },
  });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? '').trim();
    let pkg: unknown = definition;
    if (!definition) {
      try {
        pkg = JSON.parse(text('package'));
        if (!pkg || typeof pkg !== 'object' || Array.isArray(pkg)) throw new Error('not an object');
        setPackageError(null);
      } catch {
        setPackageError('The package must be a JSON object');
        return;
      }
    }
    mutation.mutate({
      slug: item?.slug ?? text('slug'),
      name: item?.name ?? text('name'),
      kind: (item?.kind ?? (definition ? 'chain' : text('kind'))) as ItemKind,
      version: text('version'),
      package: pkg as Record<string, unknown>,
      release_notes: text('release_notes'),
      ...(item ? {} : {
        description: text('description'),
        visibility: text('visibility') === 'private' ? 'private' : 'public',
        tags: text('tags').split(',').map((tag) => tag.trim()).filter(Boolean),
      }),
    });
  }
  const fieldError = (field: string) =>
    mutation.error instanceof ProblemError ? mutation.error.fieldMessage(field) : undefined;
  const input = (name: string, label: string, props: Record<string, unknown> = {}) => (
    <div>
      <label className="label" htmlFor={`publish-${name}`}>{label}</label>
      <input id={`publish-${name}`} name={name} className="input" aria-invalid={Boolean(fieldError(name))}
        aria-describedby={fieldError(name) ? `publish-${name}-error` : undefined} {...props} />
      {fieldError(name) && <p id={`publish-${name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{fieldError(name)}</p>}
    </div>
  );
  return (
    <form onSubmit={submit} aria-labelledby="publish" className="card space-y-3" noValidate>
      <h2 id="publish" className="font-semibold">
        {item ? `Publish a new version of ${item.name}` : definition ? 'Publish this chain to the marketplace' : 'Publish a chain or an agent'}
      </h2>
      {!item && (
        <div className="grid grid-cols-1 gap-3 md:grid-cols-2">
          {input('name', 'Name', { required: true, maxLength: 100, defaultValue: typeof definition?.name === 'string' ? definition.name : '' })}
          {input('slug', 'Slug (a-z, 0-9, -)', {
            required: true,
            pattern: '[a-z0-9][a-z0-9-]*',
            defaultValue: typeof definition?.name === 'string' ? slugOf(definition.name) : '',
          })}
          {!definition && (
            <div>
              <label className="label" htmlFor="publish-kind">Kind</label>
              <select id="publish-kind" name="kind" className="input" defaultValue="chain">
                <option value="chain">Chain</option>
                <option value="agent">Custom agent</option>
              </select>
            </div>
          )}
          <div>
            <label className="label" htmlFor="publish-visibility">Visibility</label>
            <select id="publish-visibility" name="visibility" className="input" defaultValue="public">
              <option value="public">Public: every tenant</option>
              <option value="private">Private: this tenant</option>
            </select>
          </div>
          {input('tags', 'Tags (comma-separated)')}
        </div>
      )}
      {input('version', 'Version (semver)', { required: true, placeholder: '1.0.0' })}
      {!item && (
        <div>
          <label className="label" htmlFor="publish-description">README (Markdown)</label>
          <textarea id="publish-description" name="description" className="input min-h-24" maxLength={2000} />
        </div>
      )}
      <div>
        <label className="label" htmlFor="publish-release_notes">Release notes (Markdown)</label>
        <textarea id="publish-release_notes" name="release_notes" className="input min-h-16" />
      </div>
      {definition ? (
        <p className="muted text-sm">The package is the chain&apos;s definition as the composer has it now.</p>
      ) : (
        <div>
          <label className="label" htmlFor="publish-package">Package (JSON: the chain or agent definition)</label>
          <textarea id="publish-package" name="package" className="input min-h-32 font-mono" spellCheck={false}
            defaultValue={item ? '' : EXAMPLE_CHAIN} aria-invalid={Boolean(packageError ?? fieldError('package'))}
            aria-describedby={packageError || fieldError('package') ? 'publish-package-error' : undefined} />
          {(packageError ?? fieldError('package')) && (
            <p id="publish-package-error" className="mt-1 text-sm text-red-700 dark:text-red-300">{packageError ?? fieldError('package')}</p>
          )}
        </div>
      )}
      <ProblemMessage error={mutation.error} />
      <button type="submit" className="btn-primary" disabled={mutation.isPending}>Publish</button>
    </form>
  );
}
