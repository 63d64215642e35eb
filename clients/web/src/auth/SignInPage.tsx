import { type FormEvent, useState } from 'react';
import { Link, Navigate, useSearchParams } from 'react-router';

import { ProblemError } from '../api/problem';
import { ProblemMessage } from '../ui/states';
import { session, useSession } from './session';

/** Only a path of this console, never another site, is a place to go after signing in. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function AuthFrame({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <main className="mx-auto flex min-h-screen max-w-sm flex-col justify-center px-4 py-10">
      <p className="mb-2 text-lg font-bold text-indigo-700 dark:text-indigo-300">Sankalpa</p>
      <h1 className="mb-6 text-2xl font-semibold">{title}</h1>
      {children}
    </main>
  );
}

export function SignInPage() {
  const state = useSession();
  const [params] = useSearchParams();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const next = safeNext(params.get('next'));

  if (state.status === 'signed-in') return <Navigate to={next} replace />;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await session.signIn(String(form.get('email')), String(form.get('password')));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  const fieldError = (field: string) =>
    error instanceof ProblemError ? error.fieldMessage(field) : undefined;
  return (
    <AuthFrame title="Sign in">
      {state.status === 'signed-out' && state.reason && (
        <p role="status" className="mb-4 rounded-md bg-amber-50 p-3 text-sm text-amber-900 dark:bg-amber-950 dark:text-amber-100">
          {state.reason}
        </p>
      )}
      <form onSubmit={submit} className="card space-y-4" noValidate>
        <div>
          <label className="label" htmlFor="email">Email</label>
          <input className="input" id="email" name="email" type="email" autoComplete="username" required
            aria-invalid={Boolean(fieldError('email'))} />
          {fieldError('email') && <p className="mt-1 text-sm text-red-700 dark:text-red-300">{fieldError('email')}</p>}
        </div>
        <div>
          <label className="label" htmlFor="password">Password</label>
          <input className="input" id="password" name="password" type="password" autoComplete="current-password" required
            aria-invalid={Boolean(fieldError('password'))} />
          {fieldError('password') && <p className="mt-1 text-sm text-red-700 dark:text-red-300">{fieldError('password')}</p>}
        </div>
        <ProblemMessage error={error} />
        <button type="submit" className="btn-primary w-full" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="muted mt-4 text-sm">
        New here? <Link className="link" to="/register">Create an account</Link>
      </p>
    </AuthFrame>
  );
}
