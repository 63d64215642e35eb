import { Link, useRouteError } from 'react-router';

import { ProblemMessage } from '../ui/states';

export function NotFound() {
  return (
    <div className="py-12 text-center">
      <h1 className="text-2xl font-semibold">Page not found</h1>
      <p className="muted mt-2">
        There is nothing at this address. <Link className="link" to="/">Go home</Link>
      </p>
    </div>
  );
}

/** A page that failed to load or render: say so, and offer a way on. */
export function RouteError() {
  const error = useRouteError();
  return (
    <main className="mx-auto max-w-xl p-6">
      <h1 className="mb-4 text-2xl font-semibold">Something went wrong</h1>
      <ProblemMessage error={error} />
      <p className="mt-4">
        <a className="link" href="/">
          Reload the console
        </a>
      </p>
    </main>
  );
}
