/**
 * The console's routes. Every page but the shell and sign-in is loaded on first visit (its own
 * chunk), so the first load carries only what the first page needs.
 */
import { createBrowserRouter } from 'react-router';

import { RegisterPage } from '../auth/RegisterPage';
import { SignInPage } from '../auth/SignInPage';
import { NotFound, RouteError } from './errors';
import { RequireSession, Shell } from './Shell';

export const router = createBrowserRouter([
  { path: '/sign-in', element: <SignInPage />, errorElement: <RouteError /> },
  { path: '/register', element: <RegisterPage />, errorElement: <RouteError /> },
  {
    element: (
      <RequireSession>
        <Shell />
      </RequireSession>
    ),
    errorElement: <RouteError />,
    children: [
      { index: true, lazy: async () => ({ Component: (await import('../home/HomePage')).HomePage }) },
      { path: 'agents', lazy: async () => ({ Component: (await import('../agents/AgentsPage')).AgentsPage }) },
      { path: 'agents/:name', lazy: async () => ({ Component: (await import('../agents/AgentPage')).AgentPage }) },
      {
        path: 'playground',
        lazy: async () => ({ Component: (await import('../playground/PlaygroundPage')).PlaygroundPage }),
      },
      { path: 'command', lazy: async () => ({ Component: (await import('../command/CommandPage')).CommandPage }) },
      { path: 'chat', lazy: async () => ({ Component: (await import('../chat/ChatPage')).ChatPage }) },
      { path: 'chat/:id', lazy: async () => ({ Component: (await import('../chat/ChatPage')).ChatPage }) },
      { path: 'composer', lazy: async () => ({ Component: (await import('../composer/ComposerPage')).ComposerPage }) },
      { path: 'runs', lazy: async () => ({ Component: (await import('../runs/RunsPage')).RunsPage }) },
      { path: 'runs/:id', lazy: async () => ({ Component: (await import('../runs/RunPage')).RunPage }) },
      { path: 'memory', lazy: async () => ({ Component: (await import('../memory/MemoryPage')).MemoryPage }) },
      {
        path: 'marketplace',
        lazy: async () => ({ Component: (await import('../marketplace/MarketplacePage')).MarketplacePage }),
      },
      {
        path: 'marketplace/:id',
        lazy: async () => ({ Component: (await import('../marketplace/ItemPage')).ItemPage }),
      },
      { path: 'webhooks', lazy: async () => ({ Component: (await import('../webhooks/WebhooksPage')).WebhooksPage }) },
      { path: 'webhooks/:id', lazy: async () => ({ Component: (await import('../webhooks/EndpointPage')).EndpointPage }) },
      { path: 'schedules', lazy: async () => ({ Component: (await import('../schedules/SchedulesPage')).SchedulesPage }) },
      {
        path: 'dashboard',
        lazy: async () => ({ Component: (await import('../dashboard/DashboardPage')).DashboardPage }),
      },
      {
        path: 'settings',
        lazy: async () => ({ Component: (await import('../settings/SettingsPage')).SettingsPage }),
      },
      { path: '*', element: <NotFound /> },
    ],
  },
]);
