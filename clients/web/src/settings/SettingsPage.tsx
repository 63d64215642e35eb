/**
 * The tenant's settings: API keys (secret shown once), model providers and the default model,
 * users and their roles, the audit log.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useNavigate } from 'react-router';

import { api, data, type Schemas } from '../api/client';
import { ProblemError } from '../api/problem';
import { can, session, useSession } from '../auth/session';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { ago } from '../ui/time';
import { Models } from './Models';

type Permission = Schemas['Permission'];
type Role = Schemas['Role'];

const keyKeys = { all: ['keys'] as const };
const PERMISSIONS: Permission[] = [
  'agents:read', 'agents:execute', 'agents:write', 'chains:read', 'chains:execute', 'chains:write',
  'memory:read', 'memory:write', 'market:read', 'market:publish',
];
const EXPIRIES = [
  { label: '1 day', seconds: 86_400 },
  { label: '30 days', seconds: 2_592_000 },
  { label: '90 days', seconds: 7_776_000 },
];
const ROLES: Role[] = ['admin', 'developer', 'viewer'];

function CreateKey() {
  const queryClient = useQueryClient();
  const [secret, setSecret] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: Schemas['CreateApiKey']) => data(api.POST('/api/keys', { body })),
    onSuccess: (created) => {
      setSecret(created.secret);
      void queryClient.invalidateQueries({ queryKey: keyKeys.all });
    },
  });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setSecret(null);
    create.mutate({
      name: String(form.get('name') ?? ''),
      permissions: form.getAll('permissions').map(String) as Permission[],
      expires_in_seconds: Number(form.get('expiry')),
    });
  }
  const nameError = create.error instanceof ProblemError ? create.error.fieldMessage('name') : undefined;
  return (
    <form onSubmit={submit} aria-labelledby="new-key" className="card mb-4 space-y-3" noValidate>
      <h3 id="new-key" className="font-semibold">New API key</h3>
      <div className="grid grid-cols-1 gap-3 md:grid-cols-2">
        <div>
          <label className="label" htmlFor="key-name">Name</label>
          <input id="key-name" name="name" className="input" required maxLength={100} aria-invalid={Boolean(nameError)}
            aria-describedby={nameError ? 'key-name-error' : undefined} />
          {nameError && <p id="key-name-error" className="mt-1 text-sm text-red-700 dark:text-red-300">{nameError}</p>}
        </div>
        <div>
          <label className="label" htmlFor="key-expiry">Expires after</label>
          <select id="key-expiry" name="expiry" className="input" defaultValue={2_592_000}>
            {EXPIRIES.map((expiry) => <option key={expiry.seconds} value={expiry.seconds}>{expiry.label}</option>)}
          </select>
        </div>
      </div>
      <fieldset>
        <legend className="label">Permissions (none: every permission you hold)</legend>
        <div className="grid grid-cols-2 gap-1 sm:grid-cols-3 lg:grid-cols-5">
          {PERMISSIONS.map((permission) => (
            <label key={permission} className="flex items-center gap-2 text-sm">
              <input type="checkbox" name="permissions" value={permission} /> {permission}
            </label>
          ))}
        </div>
      </fieldset>
      <ProblemMessage error={create.error} />
      <button type="submit" className="btn-primary" disabled={create.isPending}>Create key</button>
      {secret && (
        <div role="status" className="rounded-md border border-green-300 bg-green-50 p-3 text-sm text-green-900 dark:border-green-700 dark:bg-green-950 dark:text-green-100">
          <p className="font-semibold">Copy this key now: it is shown only once.</p>
          <code aria-label="New API key secret" className="mt-1 block break-all font-mono">{secret}</code>
        </div>
      )}
    </form>
  );
}

function Keys({ admin }: { admin: boolean }) {
  const queryClient = useQueryClient();
  const keys = useQuery({ queryKey: keyKeys.all, queryFn: () => data(api.GET('/api/keys', { params: { query: { page_size: 200 } } })) });
  const revoke = useMutation({
    mutationFn: (id: string) => data(api.DELETE('/api/keys/{id}', { params: { path: { id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keyKeys.all }),
  });
  const tools = (keys.data?.keys ?? []).filter((key) => key.purpose === 'tool');
  return (
    <div>
      {admin && <CreateKey />}
      <ProblemMessage error={revoke.error} />
      {keys.isPending && <Loading label="Loading keys" />}
      {keys.error && <ProblemMessage error={keys.error} />}
      {keys.data && tools.length === 0 && <Empty title="No API keys">Keys let tools call the API as you.</Empty>}
      {tools.length > 0 && (
        <div className="card overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">API keys</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Name</th>
                <th scope="col" className="px-4 py-2">Key</th>
                <th scope="col" className="hidden px-4 py-2 md:table-cell">Permissions</th>
                <th scope="col" className="px-4 py-2">State</th>
                {admin && <th scope="col" className="px-4 py-2"><span className="sr-only">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {tools.map((key) => (
                <tr key={key.id} aria-label={`Key ${key.name}`} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                  <td className="px-4 py-2">{key.name}</td>
                  <td className="px-4 py-2 font-mono text-xs">{key.prefix}…</td>
                  <td className="hidden px-4 py-2 text-xs md:table-cell">{key.permissions.join(', ')}</td>
                  <td className="px-4 py-2">
                    {key.revoked_at ? 'Revoked' : key.expires_at ? `Expires ${new Date(key.expires_at).toLocaleDateString()}` : 'Active'}
                  </td>
                  {admin && (
                    <td className="px-4 py-2 text-right">
                      {!key.revoked_at && (
                        <button type="button" className="btn-secondary" disabled={revoke.isPending}
                          aria-label={`Revoke ${key.name}`} onClick={() => revoke.mutate(key.id)}>
                          Revoke
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function Users({ admin, me }: { admin: boolean; me: string }) {
  const queryClient = useQueryClient();
  const users = useQuery({ queryKey: ['users'], queryFn: () => data(api.GET('/api/users', { params: { query: { page_size: 200 } } })) });
  const setRoles = useMutation({
    mutationFn: ({ id, roles }: { id: string; roles: Role[] }) =>
      data(api.PUT('/api/users/{id}/roles', { params: { path: { id } }, body: { roles } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['users'] }),
  });
  if (users.isPending) return <Loading label="Loading users" />;
  if (users.error) return <ProblemMessage error={users.error} />;
  return (
    <div className="card overflow-x-auto p-0">
      <ProblemMessage error={setRoles.error} />
      <table className="w-full text-left text-sm">
        <caption className="sr-only">Users of this tenant</caption>
        <thead className="border-b border-slate-200 dark:border-slate-700">
          <tr>
            <th scope="col" className="px-4 py-2">Name</th>
            <th scope="col" className="px-4 py-2">Email</th>
            <th scope="col" className="px-4 py-2">Role</th>
          </tr>
        </thead>
        <tbody>
          {users.data.users.map((user) => (
            <tr key={user.id} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
              <td className="px-4 py-2">{user.display_name}</td>
              <td className="px-4 py-2">{user.email}</td>
              <td className="px-4 py-2">
                {admin && user.id !== me ? (
                  <select aria-label={`Role of ${user.email}`} className="input w-auto" value={user.roles[0] ?? ''}
                    onChange={(event) => setRoles.mutate({ id: user.id, roles: [event.target.value as Role] })}>
                    {ROLES.map((role) => <option key={role} value={role}>{role}</option>)}
                  </select>
                ) : (
                  user.roles.join(', ')
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Audit() {
  const [action, setAction] = useState('');
  const events = useQuery({ queryKey: ['audit'], queryFn: () => data(api.GET('/api/audit', { params: { query: { page_size: 200 } } })) });
  if (events.isPending) return <Loading label="Loading the audit log" />;
  if (events.error) return <ProblemMessage error={events.error} />;
  const actions = [...new Set(events.data.events.map((event) => event.action))].sort();
  const shown = events.data.events.filter((event) => !action || event.action === action);
  return (
    <div>
      <div className="mb-3 max-w-xs">
        <label className="label" htmlFor="audit-action">Action</label>
        <select id="audit-action" className="input" value={action} onChange={(event) => setAction(event.target.value)}>
          <option value="">Every action</option>
          {actions.map((name) => <option key={name} value={name}>{name}</option>)}
        </select>
      </div>
      {shown.length === 0 ? (
        <Empty title="Nothing audited yet" />
      ) : (
        <ul className="card divide-y divide-slate-100 p-0 text-sm dark:divide-slate-800">
          {shown.map((event) => (
            <li key={event.id} className="flex flex-wrap gap-x-3 px-4 py-2">
              <span className="font-mono">{event.action}</span>
              <span className="muted">by {event.actor || 'unknown'}</span>
              <span className="muted">on {event.target}</span>
              <span className="muted ml-auto">{ago(event.at)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Ends every session of the user: other browsers, refresh tokens, access tokens issued. */
function SignOutEverywhere() {
  const navigate = useNavigate();
  const signOut = useMutation({
    mutationFn: () => session.signOut(true),
    onSettled: () => navigate('/sign-in'),
  });
  return (
    <button type="button" className="btn-secondary" disabled={signOut.isPending} onClick={() => signOut.mutate()}>
      Sign out everywhere
    </button>
  );
}

export function SettingsPage() {
  const state = useSession();
  const me = state.status === 'signed-in' ? state.user.id : '';
  const tabs = [{ value: 'keys', label: 'API keys', content: <Keys admin={can(state, 'keys:admin')} /> }];
  if (can(state, 'models:read')) {
    tabs.push({ value: 'models', label: 'Models', content: <Models admin={can(state, 'models:admin')} /> });
  }
  if (can(state, 'users:admin')) {
    tabs.push(
      { value: 'users', label: 'Users and roles', content: <Users admin me={me} /> },
      { value: 'audit', label: 'Audit log', content: <Audit /> },
    );
  }
  return (
    <>
      <PageHeader title="Settings">
        <SignOutEverywhere />
      </PageHeader>
      <Tabs label="Settings sections" tabs={tabs} />
    </>
  );
}
