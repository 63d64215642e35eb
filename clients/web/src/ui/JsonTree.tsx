/** A JSON value as a collapsible tree: objects and arrays fold, leaves show typed. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function Leaf({ value }: { value: Json }) {
  if (value === null) return <span className="text-slate-500">null</span>;
  if (typeof value === 'string')
    return <span className="break-all text-emerald-800 dark:text-emerald-300">"{value}"</span>;
  return <span className="text-indigo-800 dark:text-indigo-300">{String(value)}</span>;
}

function Node({ name, value, depth }: { name?: string; value: Json; depth: number }) {
  const label = name !== undefined && <span className="font-medium">{name}: </span>;
  if (value === null || typeof value !== 'object') {
    return (
      <li>
        {label}
        <Leaf value={value} />
      </li>
    );
  }
  const entries: [string, Json][] = Array.isArray(value)
    ? value.map((item, index) => [String(index), item])
    : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return (
    <li>
      <details open={depth < 2}>
        <summary className="cursor-pointer">
          {label}
          <span className="muted">{summary}</span>
        </summary>
        <ul className="ml-4 border-l border-slate-200 pl-3 dark:border-slate-700">
          {entries.map(([key, item]) => (
            <Node key={key} name={key} value={item} depth={depth + 1} />
          ))}
        </ul>
      </details>
    </li>
  );
}

export function JsonTree({ value, label }: { value: unknown; label: string }) {
  return (
    <ul aria-label={label} className="font-mono text-sm">
      <Node value={value as Json} depth={0} />
    </ul>
  );
}
