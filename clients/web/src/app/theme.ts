/** Light or dark: the user's choice when made (kept in localStorage: not a secret), else the system's. */
export type Theme = 'light' | 'dark';

const KEY = 'sankalpa.theme';

export function currentTheme(): Theme {
  const chosen = localStorage.getItem(KEY);
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme, remember = false): void {
  document.documentElement.classList.toggle('dark', theme === 'dark');
  if (remember) localStorage.setItem(KEY, theme);
}
