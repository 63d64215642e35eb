/** A signing secret shown the one time the service gives it, with a button that copies it. */
import { type ReactNode, useState } from 'react';

/** `use` says who does what with it; an endpoint's receiver when absent. */
export function Secret({ secret, use }: { secret: string; use?: ReactNode }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  return (
    <div role="status" className="rounded-md border border-green-300 bg-green-50 p-3 text-sm text-green-900 dark:border-green-700 dark:bg-green-950 dark:text-green-100">
      <p className="font-semibold">Copy the signing secret now: it is shown only once.</p>
      <p className="mt-1">{use ?? "Give it to the receiver's Standard Webhooks library to check each request's signature."}</p>
      <div className="mt-2 flex flex-wrap items-center gap-2">
        <code aria-label="Signing secret" className="break-all font-mono">{secret}</code>
        <button type="button" className="btn-secondary"
          onClick={() => {
            navigator.clipboard.writeText(secret).then(() => setCopied('yes'), () => setCopied('no'));
          }}>
          Copy secret
        </button>
        {copied === 'yes' && <span>Copied.</span>}
        {copied === 'no' && <span>The browser refused the clipboard: select the secret and copy it.</span>}
      </div>
    </div>
  );
}
