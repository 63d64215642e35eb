/**
 * Webhooks: the tenant's endpoints (newest first, a page at a time), and a new one, whose signing
 * secret is shown once. An endpoint opens on its own page (`EndpointPage.tsx`). Below them, inbound
 * triggers (`TriggersSection.tsx`).
 */
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';

import { can, useSession } from '../auth/session';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { ago } from '../ui/time';
import { EndpointForm, type EndpointFields } from './EndpointForm';
import { createEndpoint, listEndpoints, webhookKeys } from './queries';
import { Secret } from './Secret';
import { TriggersSection } from './TriggersSection';

function NewEndpoint() {
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: (fields: EndpointFields) => createEndpoint(fields),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: webhookKeys.endpoints }),
  });
  return (
    <div className="space-y-3">
      {/* A new form once one is created: its fields do not invite a second by mistake. */}
      <EndpointForm key={create.data?.endpoint.id} title="New endpoint" submit="Create endpoint" pending={create.isPending} error={create.error}
        onSubmit={(fields) => create.mutate(fields)} />
      {create.data && (
        <div className="space-y-2">
          <Secret secret={create.data.secret} />
          <Link className="link text-sm" to={`/webhooks/${create.data.endpoint.id}`}>Open {create.data.endpoint.url}</Link>
        </div>
      )}
    </div>
  );
}

export function WebhooksPage() {
  const state = useSession();
  const endpoints = useInfiniteQuery({
    queryKey: webhookKeys.endpoints,
    queryFn: ({ pageParam }) => listEndpoints(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
  });
  const all = endpoints.data?.pages.flatMap((page) => page.endpoints) ?? [];
  return (
    <>
      <PageHeader title="Webhooks" />
      <p className="muted mb-4 max-w-3xl text-sm">
        Endpoints receive the events they name as signed POST requests (Standard Webhooks), retried with backoff for
        about a day. Each one&apos;s page has its delivery log, replays and a test event.
      </p>
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
        <section aria-labelledby="endpoints" className="space-y-3 lg:col-span-2">
          <h2 id="endpoints" className="text-lg font-semibold">Endpoints</h2>
          {endpoints.isPending && <Loading label="Loading endpoints" />}
          {endpoints.error && <ProblemMessage error={endpoints.error} />}
          {endpoints.data && all.length === 0 && <Empty title="No endpoints yet">An endpoint receives the events it names.</Empty>}
          {all.length > 0 && (
            <div className="card overflow-x-auto p-0">
              <table className="w-full text-left text-sm">
                <caption className="sr-only">Endpoints, newest first</caption>
                <thead className="border-b border-slate-200 dark:border-slate-700">
                  <tr>
                    <th scope="col" className="px-4 py-2">URL</th>
                    <th scope="col" className="px-4 py-2">Event types</th>
                    <th scope="col" className="px-4 py-2">State</th>
                    <th scope="col" className="hidden px-4 py-2 md:table-cell">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {all.map((endpoint) => (
                    <tr key={endpoint.id} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                      <td className="max-w-xs px-4 py-2">
                        <Link className="link break-all font-mono" to={`/webhooks/${endpoint.id}`}>{endpoint.url}</Link>
                        {endpoint.description && <p className="muted text-xs">{endpoint.description}</p>}
                      </td>
                      <td className="px-4 py-2 font-mono text-xs">{endpoint.event_types.join(', ')}</td>
                      <td className="px-4 py-2">
                        {endpoint.enabled ? 'enabled' : 'disabled'} · {endpoint.ordered ? 'ordered' : 'concurrent'}
                      </td>
                      <td className="hidden px-4 py-2 md:table-cell">{ago(endpoint.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {endpoints.hasNextPage && (
            <button type="button" className="btn-secondary" disabled={endpoints.isFetchingNextPage} onClick={() => void endpoints.fetchNextPage()}>
              More endpoints
            </button>
          )}
        </section>
        {can(state, 'webhooks:write') && <NewEndpoint />}
      </div>
      <TriggersSection />
    </>
  );
}
