// What the extension contributes to the editor, in one place: the editor layer registers a
// handler for each command (its type makes a missing one a compile error), the tests check
// that activation registers exactly these, and `npm run package` that the packaged manifest
// lists every command and setting.

export const COMMANDS = {
  'sankalpa.signIn': 'Sign in',
  'sankalpa.signOut': 'Sign out',
  'sankalpa.refresh': 'Refresh',
  'sankalpa.runAgentOnSelection': 'Run agent on selection',
  'sankalpa.runAgentOnFile': 'Run agent on file',
  'sankalpa.runAgent': 'Run agent',
  'sankalpa.scanFile': 'Scan file for security problems',
  'sankalpa.generateProject': 'Generate project into this folder',
  'sankalpa.runChain': 'Run chain...',
  'sankalpa.runChainFile': 'Run this chain definition',
  'sankalpa.validateChainFile': 'Validate this chain definition',
  'sankalpa.openRun': 'Open run',
  'sankalpa.followRun': 'Follow run',
  'sankalpa.cancelRun': 'Cancel run',
  'sankalpa.approveStep': 'Approve waiting step',
  'sankalpa.rejectStep': 'Reject waiting step',
} as const;

export type CommandId = keyof typeof COMMANDS;

export const SETTINGS = {
  'sankalpa.gatewayUrl': 'The gateway URL; when empty, the gateway of `sankalpa.profile` in the CLI\'s config.toml.',
  'sankalpa.profile': 'The CLI profile (config.toml) whose gateway to use; its default profile when empty.',
  'sankalpa.scanOnSave': 'Scan a file with security_scanner again each time it is saved, once it has been scanned.',
  'sankalpa.runsRefreshSeconds': 'How often the recent runs are read again while one is live.',
} as const;

export type SettingId = keyof typeof SETTINGS;
