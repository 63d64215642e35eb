/** The frame of every signed-in page: skip link, navigation, theme, the user and sign-out. */
import { type ReactNode, useState } from 'react';
import { Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router';

import { can, session, useSession } from '../auth/session';
import { Loading } from '../ui/states';
import { applyTheme, currentTheme } from './theme';

const NAV = [
  { to: '/', label: 'Home' },
  { to: '/agents', label: 'Agents' },
  { to: '/playground', label: 'Playground' },
  { to: '/command', label: 'Command' },
  { to: '/chat', label: 'Chat' },
  { to: '/composer', label: 'Composer' },
  { to: '/runs', label: 'Runs' },
  { to: '/memory', label: 'Memory' },
  { to: '/marketplace', label: 'Marketplace' },
  { to: '/webhooks', label: 'Webhooks', permission: 'webhooks:read' },
  { to: '/schedules', label: 'Schedules', permission: 'schedules:read' },
  { to: '/dashboard', label: 'Dashboard', permission: 'fleet:read' },
  { to: '/settings', label: 'Settings' },
];

export function RequireSession({ children }: { children: ReactNode }) {
  const state = useSession();
  const location = useLocation();
  if (state.status === 'restoring') return <Loading label="Restoring your session" />;
  if (state.status === 'signed-out') {
    const next = location.pathname + location.search;
    return <Navigate to={next === '/' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(next)}`} replace />;
  }
  return children;
}

function ThemeToggle() {
  const [theme, setTheme] = useState(currentTheme);
  const other = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="btn-secondary"
      aria-label={`Switch to ${other} theme`}
      onClick={() => {
        applyTheme(other, true);
        setTheme(other);
      }}
    >
      {theme === 'dark' ? '☀' : '☾'}
    </button>
  );
}

function NavItems({ onNavigate }: { onNavigate?: () => void }) {
  const state = useSession();
  // A page the user cannot use is not offered (the dashboard is the operators').
  return NAV.filter((item) => !item.permission || can(state, item.permission)).map((item) => (
    <NavLink
      key={item.to}
      to={item.to}
      end={item.to === '/'}
      onClick={onNavigate}
      className={({ isActive }) =>
        `block rounded-md px-3 py-2 text-sm font-medium lg:px-2.5 ${
          isActive
            ? 'bg-indigo-100 text-indigo-900 dark:bg-indigo-900 dark:text-indigo-50'
            : 'text-slate-800 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800'
        }`
      }
    >
      {item.label}
    </NavLink>
  ));
}

export function Shell() {
  const state = useSession();
  const navigate = useNavigate();
  const [menuOpen, setMenuOpen] = useState(false);
  const user = state.status === 'signed-in' ? state.user : null;
  return (
    <div className="min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2 focus:text-slate-900"
      >
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
        <div className="mx-auto flex max-w-7xl items-center gap-4 px-4 py-3">
          <NavLink to="/" className="text-lg font-bold tracking-tight text-indigo-700 dark:text-indigo-300">
            Sankalpa
          </NavLink>
          {/* Wraps rather than widening the page when the links outgrow the line. */}
          <nav aria-label="Main" className="hidden min-w-0 flex-wrap gap-0.5 lg:flex">
            <NavItems />
          </nav>
          <div className="ml-auto flex items-center gap-2">
            {user && (
              <span className="muted hidden text-sm 2xl:inline" title={user.tenant_id}>
                {user.display_name} · {user.roles.join(', ')}
              </span>
            )}
            <ThemeToggle />
            <button
              type="button"
              className="btn-secondary"
              onClick={() => {
                // Signed out here even when the gateway did not answer; its cookie then expires.
                void session
                  .signOut()
                  .catch(() => undefined)
                  .finally(() => navigate('/sign-in'));
              }}
            >
              Sign out
            </button>
            <button
              type="button"
              className="btn-secondary lg:hidden"
              aria-expanded={menuOpen}
              aria-controls="mobile-nav"
              onClick={() => setMenuOpen(!menuOpen)}
            >
              Menu
            </button>
          </div>
        </div>
        {menuOpen && (
          <nav id="mobile-nav" aria-label="Main" className="border-t border-slate-200 px-4 py-2 lg:hidden dark:border-slate-800">
            <NavItems onNavigate={() => setMenuOpen(false)} />
          </nav>
        )}
      </header>
      <main id="main" tabIndex={-1} className="mx-auto max-w-7xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}
