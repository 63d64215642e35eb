import { type FormEvent, useState } from 'react';
import { Link, Navigate } from 'react-router';

import { ProblemError, problemFrom } from '../api/problem';
import { api } from '../api/client';
import { ProblemMessage } from '../ui/states';
import { session, useSession } from './session';
import { AuthFrame } from './SignInPage';

const FIELDS = [
  { name: 'email', label: 'Email', type: 'email', autoComplete: 'username', required: true },
  { name: 'password', label: 'Password (8 to 128 characters)', type: 'password', autoComplete: 'new-password', required: true },
  { name: 'display_name', label: 'Your name', type: 'text', autoComplete: 'name', required: false },
  { name: 'tenant_name', label: 'Organisation', type: 'text', autoComplete: 'organization', required: false },
] as const;

/** Registers a user with a tenant of their own (its admin), then signs in. */
export function RegisterPage() {
  const state = useSession();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (state.status === 'signed-in') return <Navigate to="/" replace />;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const value = (name: string) => String(form.get(name) ?? '');
    setBusy(true);
    setError(null);
    try {
      const { error: failure, response } = await api.POST('/api/users/register', {
        body: {
          email: value('email'),
          password: value('password'),
          ...(value('display_name') ? { display_name: value('display_name') } : {}),
          ...(value('tenant_name') ? { tenant_name: value('tenant_name') } : {}),
        },
      });
      if (!response.ok) throw new ProblemError(problemFrom(failure, response));
      await session.signIn(value('email'), value('password'));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  const fieldError = (field: string) =>
    error instanceof ProblemError ? error.fieldMessage(field) : undefined;
  return (
    <AuthFrame title="Create an account">
      <form onSubmit={submit} className="card space-y-4" noValidate>
        {FIELDS.map((field) => (
          <div key={field.name}>
            <label className="label" htmlFor={field.name}>{field.label}</label>
            <input
              className="input"
              id={field.name}
              name={field.name}
              type={field.type}
              autoComplete={field.autoComplete}
              required={field.required}
              aria-invalid={Boolean(fieldError(field.name))}
              aria-describedby={fieldError(field.name) ? `${field.name}-error` : undefined}
            />
            {fieldError(field.name) && (
              <p id={`${field.name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">
                {fieldError(field.name)}
              </p>
            )}
          </div>
        ))}
        <ProblemMessage error={error} />
        <button type="submit" className="btn-primary w-full" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p className="muted mt-4 text-sm">
        Have an account? <Link className="link" to="/sign-in">Sign in</Link>
      </p>
    </AuthFrame>
  );
}
