// The gateway to talk to, from the same config.toml as the CLI (clients/cli/src/config.rs):
// `$XDG_CONFIG_HOME/sankalpa/config.toml`, else `~/.config/sankalpa/config.toml`, with named
// profiles (`[profiles.<name>] gateway = "..."`) and `default_profile`. The CLI's
// credentials.toml is not read: the editor keeps its own credential in its secret storage.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parse } from 'smol-toml';

/** The gateway `make run` starts, as the CLI's default. */
export const DEFAULT_GATEWAY = 'http://127.0.0.1:8080';
export const DEFAULT_PROFILE = 'default';

export interface Profiles {
  defaultProfile: string;
  gateways: Record<string, string | undefined>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'sankalpa');
  if (env.HOME) return join(env.HOME, '.config', 'sankalpa');
  return undefined;
}

/** The profiles of config.toml in `dir`; none when it does not exist. */
export async function readProfiles(dir: string | undefined): Promise<Profiles> {
  const empty: Profiles = { defaultProfile: DEFAULT_PROFILE, gateways: {} };
  if (!dir) return empty;
  let text: string;
  try {
    text = await readFile(join(dir, 'config.toml'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return empty;
    throw error;
  }
  const config = parse(text) as { default_profile?: unknown; profiles?: Record<string, { gateway?: unknown }> };
  const gateways: Record<string, string | undefined> = {};
  for (const [name, profile] of Object.entries(config.profiles ?? {})) {
    gateways[name] = typeof profile?.gateway === 'string' ? profile.gateway : undefined;
  }
  return {
    defaultProfile: typeof config.default_profile === 'string' ? config.default_profile : DEFAULT_PROFILE,
    gateways,
  };
}

/**
 * The gateway URL: the `sankalpa.gatewayUrl` setting when set, else the gateway of the
 * `sankalpa.profile` setting's profile (the config's default profile when empty), else the
 * CLI's default.
 */
export function gatewayUrl(settings: { gatewayUrl?: string; profile?: string }, profiles: Profiles): string {
  if (settings.gatewayUrl) return settings.gatewayUrl;
  const name = settings.profile || profiles.defaultProfile;
  return profiles.gateways[name] ?? DEFAULT_GATEWAY;
}
