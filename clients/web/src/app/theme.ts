/** Light or dark: the user's choice when made (kept in localStorage: not a secret), else the system's. */
import { useSyncExternalStore } from 'react';

export type Theme = 'light' | 'dark';

/** Pieces drawn outside Tailwind's classes (a canvas, an editor in a shadow root) follow this. */
const listeners = new Set<() => void>();

const KEY = 'sankalpa.theme';

export function currentTheme(): Theme {
  const chosen = localStorage.getItem(KEY);
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme, remember = false): void {
  document.documentElement.classList.toggle('dark', theme === 'dark');
  if (remember) localStorage.setItem(KEY, theme);
  listeners.forEach((listener) => listener());
}

function shown(): Theme {
  return document.documentElement.classList.contains('dark') ? 'dark' : 'light';
}

/** The theme shown now, re-rendering its user when it changes. */
export function useShownTheme(): Theme {
  return useSyncExternalStore((listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, shown);
}
