// The fleet the tests talk to: the gateway crates/testkit/tests/vscode.rs starts, named by
// SANKALPA_GATEWAY_URL. Without it the suites that need it are skipped, said by node's runner.
import { randomUUID } from 'node:crypto';

import { Client, MemoryStore } from '../src/api';

export const GATEWAY = process.env.SANKALPA_GATEWAY_URL;
/** `test(name, { skip }, ...)`: a reason when there is no fleet. */
export const needsFleet = GATEWAY ? false : 'SANKALPA_GATEWAY_URL is not set (crates/testkit/tests/vscode.rs sets it)';

export const PASSWORD = 'correct horse battery';

/** A new user in a tenant of its own, and its email. */
export async function register(): Promise<string> {
  const email = `vscode-${randomUUID()}@example.com`;
  const response = await fetch(new URL('/api/users/register', GATEWAY), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`register answered ${response.status}: ${await response.text()}`);
  }
  return email;
}

/** A client signed in as a new user. */
export async function signedIn(): Promise<{ client: Client; store: MemoryStore; email: string }> {
  const email = await register();
  const store = new MemoryStore();
  const client = new Client(GATEWAY!, store);
  await client.signIn(email, PASSWORD);
  return { client, store, email };
}

/** Planted findings: each one's rule, line (1-based), the token it starts at, its severity. */
export const PLANTED = {
  code: [
    'import hashlib, os',
    '',
    'def handler(user_id, name):',
    '    query = "SELECT * FROM users WHERE id = " + user_id',
    '    os.system("echo " + name)',
    '    return hashlib.md5(name.encode()).hexdigest()',
    '',
    '# 🙂 note: eval(x) in a comment is not run',
    'label = "🙂🙂"; result = eval(name)',
  ].join('\n'),
  expected: [
    { rule: 'sql_injection', line: 4, token: '"SELECT', severity: 'error' },
    { rule: 'command_injection', line: 5, token: 'os.system', severity: 'error' },
    // A medium finding is a SARIF warning.
    { rule: 'weak_hash', line: 6, token: 'hashlib.md5', severity: 'warning' },
    // The rule's match takes the character before `eval`.
    { rule: 'code_injection', line: 9, token: ' eval(', severity: 'error' },
  ],
};
