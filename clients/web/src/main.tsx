import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { RouterProvider } from 'react-router';

import { router } from './app/routes';
import { applyTheme, currentTheme } from './app/theme';
import { ProblemError } from './api/problem';
import { session } from './auth/session';
import './index.css';

applyTheme(currentTheme());

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      // A problem the server answered (403, 404, 422) will not change by asking again.
      retry: (count, error) => !(error instanceof ProblemError) && count < 2,
    },
  },
});

// Whoever signs out, or is signed out, leaves no data of theirs in the cache.
session.subscribe(() => {
  if (session.snapshot().status === 'signed-out') queryClient.clear();
});
void session.restore();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
