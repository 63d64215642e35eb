/**
 * Inbound triggers, on the webhooks page: the tenant's triggers (newest first, a page at a time)
 * with what they run, how senders sign and where they post, enabled or disabled and deleted in
 * place; and a new one, whose URL and signing secret are shown once it is made.
 */
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useId, useState } from 'react';

import { ProblemError } from '../api/problem';
import { can, useSession } from '../auth/session';
import { chainKeys, listChains } from '../runs/queries';
import { ConfirmButton } from '../ui/Confirm';
import { Empty, Loading, ProblemMessage } from '../ui/states';
import { type CreateTrigger, type Trigger, createTrigger, deleteTrigger, listTriggers, triggerKeys, updateTrigger } from './queries';
import { Secret } from './Secret';
import { DEFAULT_MAPPING, type FieldProblem, type TriggerFields, isProblem, runsOf, triggerBody, urlOf } from './triggers';

/** A field the service names that lands on another of the form's fields. */
const ON_FIELD: Record<string, string> = { template: 'chain_id', input_mapping_json: 'input_mapping' };

function TriggerForm({ pending, error, onSubmit }: { pending: boolean; error: unknown; onSubmit: (body: CreateTrigger) => void }) {
  const id = useId();
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  const [local, setLocal] = useState<FieldProblem | undefined>();

  function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? '');
    const body = triggerBody({
      name: text('name'),
      target: text('target'),
      mapping: text('input_mapping'),
      signature: text('signature') as TriggerFields['signature'],
    });
    setLocal(isProblem(body) ? body : undefined);
    if (!isProblem(body)) onSubmit(body);
  }

  const served = error instanceof ProblemError ? error.problem.errors ?? [] : [];
  const problems = local ? [local] : served.map((each) => ({ ...each, field: ON_FIELD[each.field] ?? each.field }));
  const messageOf = (field: string) => problems.find((problem) => problem.field === field)?.message;
  const named = problems.some((problem) => ['name', 'chain_id', 'input_mapping', 'signature'].includes(problem.field));
  const described = (field: string, help: boolean) =>
    [help && `${id}-${field}-help`, messageOf(field) && `${id}-${field}-error`].filter(Boolean).join(' ') || undefined;
  const errorOf = (field: string) => {
    const message = messageOf(field);
    return message && <p id={`${id}-${field}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{message}</p>;
  };

  return (
    <form onSubmit={send} aria-labelledby={`${id}-title`} className="card space-y-3" noValidate>
      <h2 id={`${id}-title`} className="font-semibold">New trigger</h2>
      <div>
        <label className="label" htmlFor={`${id}-name`}>Name</label>
        <input id={`${id}-name`} name="name" className="input" maxLength={200} aria-invalid={Boolean(messageOf('name'))}
          aria-describedby={described('name', false)} />
        {errorOf('name')}
      </div>
      {chains.error && <ProblemMessage error={chains.error} />}
      <div>
        <label className="label" htmlFor={`${id}-chain_id`}>Chain</label>
        <select id={`${id}-chain_id`} name="target" className="input" required defaultValue="" aria-invalid={Boolean(messageOf('chain_id'))}
          aria-describedby={described('chain_id', false)}>
          <option value="">Choose a chain…</option>
          {chains.data?.chains.map((candidate) => {
            const key = candidate.origin === 'template' ? `template:${candidate.name}` : `chain:${candidate.id ?? ''}`;
            return <option key={key} value={key}>{candidate.name} ({candidate.origin})</option>;
          })}
        </select>
        {errorOf('chain_id')}
      </div>
      <div>
        <label className="label" htmlFor={`${id}-signature`}>Senders sign with</label>
        <select id={`${id}-signature`} name="signature" className="input" defaultValue="standard">
          <option value="standard">Standard Webhooks (webhook-id, webhook-signature)</option>
          <option value="github">GitHub (X-Hub-Signature-256)</option>
        </select>
      </div>
      <div>
        <label className="label" htmlFor={`${id}-input_mapping`}>Input mapping (JSON)</label>
        <textarea id={`${id}-input_mapping`} name="input_mapping" className="input min-h-24 font-mono" spellCheck={false}
          defaultValue={DEFAULT_MAPPING} aria-invalid={Boolean(messageOf('input_mapping'))} aria-describedby={described('input_mapping', true)} />
        <p id={`${id}-input_mapping-help`} className="muted mt-1 text-xs">
          The run&apos;s input: strings <code>{'${body.a.b}'}</code>, <code>{'${headers.name}'}</code>, <code>{'${query.name}'}</code> are
          replaced from the request. A JSON object of at most 64 KiB.
        </p>
        {errorOf('input_mapping')}
      </div>
      {!named && <ProblemMessage error={error} />}
      <button type="submit" className="btn-primary" disabled={pending}>Create trigger</button>
    </form>
  );
}

function NewTrigger() {
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: (body: CreateTrigger) => createTrigger(body),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: triggerKeys.all }),
  });
  return (
    <div className="space-y-3">
      {/* A new form once one is created: its fields do not invite a second by mistake. */}
      <TriggerForm key={create.data?.trigger.id} pending={create.isPending} error={create.error} onSubmit={(body) => create.mutate(body)} />
      {create.data && (
        <div className="space-y-2">
          <p className="text-sm">
            Senders post to <code aria-label="Trigger URL" className="break-all font-mono">{urlOf(create.data.trigger, window.location.origin)}</code>
          </p>
          <Secret secret={create.data.secret} use="Give it to the sender: it signs each request with it, and requests whose signature does not match are refused." />
        </div>
      )}
    </div>
  );
}

function Actions({ trigger }: { trigger: Trigger }) {
  const queryClient = useQueryClient();
  const done = () => queryClient.invalidateQueries({ queryKey: triggerKeys.all });
  const toggle = useMutation({ mutationFn: (enabled: boolean) => updateTrigger(trigger.id, { enabled }), onSuccess: done });
  const remove = useMutation({ mutationFn: () => deleteTrigger(trigger.id), onSuccess: done });
  const name = trigger.name || trigger.id;
  return (
    <div className="flex flex-wrap gap-2">
      <button type="button" className="btn-secondary" disabled={toggle.isPending} aria-label={`${trigger.enabled ? 'Disable' : 'Enable'} ${name}`}
        onClick={() => toggle.mutate(!trigger.enabled)}>
        {trigger.enabled ? 'Disable' : 'Enable'}
      </button>
      <ConfirmButton label="Delete…" title={`Delete ${name}?`} act="Delete trigger" disabled={remove.isPending} onConfirm={() => remove.mutate()}>
        Its URL answers 404 from then on and its API key is revoked; the runs it started are kept.
      </ConfirmButton>
      <ProblemMessage error={toggle.error ?? remove.error} />
    </div>
  );
}

export function TriggersSection() {
  const state = useSession();
  const write = can(state, 'webhooks:write');
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  const triggers = useInfiniteQuery({
    queryKey: triggerKeys.all,
    queryFn: ({ pageParam }) => listTriggers(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
  });
  const all = triggers.data?.pages.flatMap((page) => page.triggers) ?? [];
  const chainNames = new Map((chains.data?.chains ?? []).flatMap((chain) => (chain.id ? [[chain.id, chain.name]] : [])));
  return (
    <div className="mt-8 grid grid-cols-1 gap-6 lg:grid-cols-3">
      <section aria-labelledby="triggers" className="space-y-3 lg:col-span-2">
        <h2 id="triggers" className="text-lg font-semibold">Inbound triggers</h2>
        <p className="muted max-w-3xl text-sm">
          A trigger starts its chain when a signed request reaches its URL; a sender&apos;s redelivery of the same webhook id starts
          the run once.
        </p>
        {triggers.isPending && <Loading label="Loading triggers" />}
        {triggers.error && <ProblemMessage error={triggers.error} />}
        {triggers.data && all.length === 0 && <Empty title="No triggers yet">A trigger runs a chain when another system calls it.</Empty>}
        {all.length > 0 && (
          <div className="card overflow-x-auto p-0">
            <table className="w-full text-left text-sm">
              <caption className="sr-only">Inbound triggers, newest first</caption>
              <thead className="border-b border-slate-200 dark:border-slate-700">
                <tr>
                  <th scope="col" className="px-4 py-2">Name</th>
                  <th scope="col" className="px-4 py-2">URL</th>
                  <th scope="col" className="px-4 py-2">State</th>
                  {write && <th scope="col" className="px-4 py-2"><span className="sr-only">Actions</span></th>}
                </tr>
              </thead>
              <tbody>
                {all.map((trigger) => (
                  <tr key={trigger.id} className="border-b border-slate-100 align-top last:border-0 dark:border-slate-800" aria-label={trigger.name || trigger.id}>
                    <th scope="row" className="px-4 py-2 text-left font-normal">
                      <span className="font-medium">{trigger.name || 'unnamed'}</span>
                      <p className="muted text-xs">{runsOf(trigger, chainNames)}</p>
                    </th>
                    <td className="max-w-xs px-4 py-2 font-mono text-xs break-all">{urlOf(trigger, window.location.origin)}</td>
                    <td className="px-4 py-2">{trigger.enabled ? 'enabled' : 'disabled'} · {trigger.signature}</td>
                    {write && <td className="px-4 py-2"><Actions trigger={trigger} /></td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {triggers.hasNextPage && (
          <button type="button" className="btn-secondary" disabled={triggers.isFetchingNextPage} onClick={() => void triggers.fetchNextPage()}>
            More triggers
          </button>
        )}
      </section>
      {write && <NewTrigger />}
    </div>
  );
}
