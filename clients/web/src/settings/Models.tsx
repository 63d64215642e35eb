/**
 * The tenant's model providers and default model (`/api/models/*`): listed for models:read,
 * added, replaced, tested and deleted for models:admin. A key is written, never read back: the
 * list says only whether one is stored, and a replacement left without one keeps it. Below, the
 * tenant's LLM use of the last 30 days (`/api/models/usage`): tokens, and their cost at the
 * operator's prices when set.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';

import { api, data, type Schemas } from '../api/client';
import { ProblemError } from '../api/problem';
import { Empty, Loading, ProblemMessage } from '../ui/states';

type Provider = Schemas['ModelProvider'];
type Protocol = Schemas['ModelProtocol'];

const modelKeys = { all: ['models'] as const, usage: ['models', 'usage'] as const };
const PROTOCOLS: { value: Protocol; label: string }[] = [
  { value: 'openai', label: 'OpenAI-compatible (chat completions)' },
  { value: 'anthropic', label: 'Anthropic (Messages)' },
];

/** The models of a comma- or space-separated list, without blanks. */
export function modelList(text: string): string[] {
  return text.split(/[\s,]+/).filter((model) => model.length > 0);
}

function ProviderForm({ editing, onDone }: { editing: Provider | null; onDone: () => void }) {
  const queryClient = useQueryClient();
  const put = useMutation({
    mutationFn: ({ name, body }: { name: string; body: Schemas['PutModelProvider'] }) =>
      data(api.PUT('/api/models/providers/{name}', { params: { path: { name } }, body })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: modelKeys.all });
      onDone();
    },
  });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const key = String(form.get('api_key') ?? '');
    put.mutate({
      name: editing?.name ?? String(form.get('name') ?? '').trim(),
      body: {
        protocol: String(form.get('protocol')) as Protocol,
        base_url: String(form.get('base_url') ?? '').trim(),
        models: modelList(String(form.get('models') ?? '')),
        // Left empty on a replacement: the stored key is kept.
        ...(key || !editing ? { api_key: key || null } : {}),
      },
    });
  }
  const problem = put.error instanceof ProblemError ? put.error : undefined;
  const field = (name: string) => {
    const message = problem?.fieldMessage(name);
    return {
      invalid: { 'aria-invalid': Boolean(message), 'aria-describedby': message ? `provider-${name}-error` : undefined },
      message: message && <p id={`provider-${name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{message}</p>,
    };
  };
  const name = field('name');
  const baseUrl = field('base_url');
  const apiKey = field('api_key');
  const models = field('models');
  const heading = editing ? `Replace ${editing.name}` : 'New model provider';
  return (
    <form onSubmit={submit} aria-labelledby="provider-form" className="card mb-4 space-y-3" noValidate>
      <h3 id="provider-form" className="font-semibold">{heading}</h3>
      <div className="grid grid-cols-1 gap-3 md:grid-cols-2">
        {!editing && (
          <div>
            <label className="label" htmlFor="provider-name">Name</label>
            <input id="provider-name" name="name" className="input" required maxLength={63} {...name.invalid} />
            {name.message}
          </div>
        )}
        <div>
          <label className="label" htmlFor="provider-protocol">Protocol</label>
          <select id="provider-protocol" name="protocol" className="input" defaultValue={editing?.protocol ?? 'openai'}>
            {PROTOCOLS.map((protocol) => <option key={protocol.value} value={protocol.value}>{protocol.label}</option>)}
          </select>
        </div>
        <div>
          <label className="label" htmlFor="provider-base-url">Base URL</label>
          <input id="provider-base-url" name="base_url" className="input" required maxLength={2048}
            placeholder="https://api.openai.com/v1" defaultValue={editing?.base_url} {...baseUrl.invalid} />
          {baseUrl.message}
        </div>
        <div>
          <label className="label" htmlFor="provider-api-key">
            API key{editing?.has_api_key ? ' (empty: keep the stored one)' : ' (optional)'}
          </label>
          <input id="provider-api-key" name="api_key" type="password" className="input" autoComplete="off"
            maxLength={4096} {...apiKey.invalid} />
          {apiKey.message}
        </div>
        <div className="md:col-span-2">
          <label className="label" htmlFor="provider-models">Models (separated by commas)</label>
          <input id="provider-models" name="models" className="input" required
            placeholder="gpt-4o-mini, gpt-4o" defaultValue={editing?.models.join(', ')} {...models.invalid} />
          {models.message}
        </div>
      </div>
      <ProblemMessage error={put.error} />
      <div className="flex gap-2">
        <button type="submit" className="btn-primary" disabled={put.isPending}>
          {editing ? 'Save provider' : 'Add provider'}
        </button>
        {editing && <button type="button" className="btn-secondary" onClick={onDone}>Cancel</button>}
      </div>
    </form>
  );
}

function DefaultModel({ providers, current, admin }: { providers: Provider[]; current: string | null; admin: boolean }) {
  const queryClient = useQueryClient();
  const set = useMutation({
    mutationFn: (model: string) => data(api.PUT('/api/models/default', { body: { model: model || null } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: modelKeys.all }),
  });
  const choices = providers.flatMap((provider) => provider.models.map((model) => `${provider.name}/${model}`));
  return (
    <div className="card mb-4 max-w-xl">
      <label className="label" htmlFor="default-model">Default model</label>
      <select id="default-model" className="input" value={current ?? ''} disabled={!admin || set.isPending}
        onChange={(event) => set.mutate(event.target.value)}>
        <option value="">None: the platform's model, if the operator set one</option>
        {choices.map((choice) => <option key={choice} value={choice}>{choice}</option>)}
      </select>
      <p className="muted mt-1 text-sm">Runs that name no model ask this one.</p>
      <ProblemMessage error={set.error} />
    </div>
  );
}

function TestResult({ name }: { name: string }) {
  const test = useMutation({
    mutationFn: () => data(api.POST('/api/models/providers/{name}/test', { params: { path: { name } }, body: {} })),
  });
  return (
    <span className="inline-flex items-center gap-2">
      <button type="button" className="btn-secondary" disabled={test.isPending} aria-label={`Test ${name}`}
        onClick={() => test.mutate()}>
        {test.isPending ? 'Testing…' : 'Test'}
      </button>
      {test.data && (
        <span role="status" aria-label={`Test of ${name}`} className="text-sm">
          {test.data.ok ? `Answered (${test.data.model}, ${test.data.latency_ms} ms)` : `Failed: ${test.data.error ?? 'no answer'}`}
        </span>
      )}
      {test.error && <ProblemMessage error={test.error} />}
    </span>
  );
}

/** US dollars to four decimals: a day's cost is often a fraction of a cent. */
function dollars(amount: number): string {
  return `$${amount.toFixed(4)}`;
}

function Usage() {
  const usage = useQuery({
    queryKey: modelKeys.usage,
    queryFn: () => data(api.GET('/api/models/usage', { params: { query: { days: 30 } } })),
  });
  if (usage.isPending) return <Loading label="Loading LLM use" />;
  if (usage.error) return <ProblemMessage error={usage.error} />;
  const { days, priced, tokens_per_day: limit } = usage.data;
  return (
    <section aria-labelledby="usage-heading" className="mt-6">
      <h3 id="usage-heading" className="mb-2 font-semibold">LLM use, last 30 days</h3>
      <p className="muted mb-2 text-sm">
        {limit ? `Daily limit: ${limit.toLocaleString('en')} tokens.` : 'No daily limit.'}
        {priced ? '' : ' Costs show once the operator sets prices.'}
      </p>
      {days.length === 0 ? (
        <p className="text-sm">No LLM use in the last 30 days.</p>
      ) : (
        <div className="card max-w-xl overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">LLM use per day (UTC)</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Day (UTC)</th>
                <th scope="col" className="px-4 py-2 text-right">Tokens</th>
                {priced && <th scope="col" className="px-4 py-2 text-right">Cost</th>}
              </tr>
            </thead>
            <tbody>
              {days.map((day) => (
                <tr key={day.day} aria-label={`Use on ${day.day}`}
                  className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                  <td className="px-4 py-2 font-mono">{day.day}</td>
                  <td className="px-4 py-2 text-right">{day.tokens.toLocaleString('en')}</td>
                  {priced && <td className="px-4 py-2 text-right">{dollars(day.cost_usd)}</td>}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function Models({ admin }: { admin: boolean }) {
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<Provider | null>(null);
  const providers = useQuery({ queryKey: modelKeys.all, queryFn: () => data(api.GET('/api/models/providers')) });
  const remove = useMutation({
    mutationFn: (name: string) => data(api.DELETE('/api/models/providers/{name}', { params: { path: { name } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: modelKeys.all }),
  });
  if (providers.isPending) return <Loading label="Loading model providers" />;
  if (providers.error) return <ProblemMessage error={providers.error} />;
  const list = providers.data.providers;
  return (
    <div>
      {admin && <ProviderForm key={editing?.name ?? 'new'} editing={editing} onDone={() => setEditing(null)} />}
      <DefaultModel providers={list} current={providers.data.default_model ?? null} admin={admin} />
      <ProblemMessage error={remove.error} />
      {list.length === 0 ? (
        <Empty title="No model providers">Runs use the platform's model, if the operator set one.</Empty>
      ) : (
        <div className="card overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Model providers</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Name</th>
                <th scope="col" className="px-4 py-2">Protocol</th>
                <th scope="col" className="hidden px-4 py-2 md:table-cell">Base URL</th>
                <th scope="col" className="px-4 py-2">Models</th>
                <th scope="col" className="px-4 py-2">Key</th>
                {admin && <th scope="col" className="px-4 py-2"><span className="sr-only">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {list.map((provider) => (
                <tr key={provider.name} aria-label={`Provider ${provider.name}`}
                  className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                  <td className="px-4 py-2 font-mono">{provider.name}</td>
                  <td className="px-4 py-2">{provider.protocol}</td>
                  <td className="hidden break-all px-4 py-2 font-mono text-xs md:table-cell">{provider.base_url}</td>
                  <td className="px-4 py-2 text-xs">{provider.models.join(', ')}</td>
                  <td className="px-4 py-2">{provider.has_api_key ? 'Stored' : 'None'}</td>
                  {admin && (
                    <td className="space-x-2 whitespace-nowrap px-4 py-2 text-right">
                      <TestResult name={provider.name} />
                      <button type="button" className="btn-secondary" aria-label={`Edit ${provider.name}`}
                        onClick={() => setEditing(provider)}>
                        Edit
                      </button>
                      <button type="button" className="btn-secondary" disabled={remove.isPending}
                        aria-label={`Delete ${provider.name}`} onClick={() => remove.mutate(provider.name)}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Usage />
    </div>
  );
}
