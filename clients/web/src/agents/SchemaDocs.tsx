/** A JSON Schema as a table a person reads: each property, its type, whether required, what it is. */
import type { JsonSchema } from './schemaForm';

function typeText(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((option) => JSON.stringify(option)).join(' | ');
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'any');
  if (type === 'array' && schema.items) return `array of ${typeText(schema.items)}`;
  return type;
}

function bounds(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.minLength !== undefined) parts.push(`min length ${schema.minLength}`);
  if (schema.maxLength !== undefined) parts.push(`max length ${schema.maxLength}`);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  return parts.join(', ');
}

export function SchemaDocs({ schema, title }: { schema: JsonSchema; title: string }) {
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  return (
    <section aria-label={title}>
      <h3 className="mb-2 font-semibold">{title}</h3>
      {properties.length === 0 ? (
        <p className="muted text-sm">Any JSON object ({typeText(schema)}).</p>
      ) : (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <thead>
              <tr className="border-b border-slate-200 dark:border-slate-700">
                <th scope="col" className="py-1 pr-3">Field</th>
                <th scope="col" className="py-1 pr-3">Type</th>
                <th scope="col" className="py-1">Description</th>
              </tr>
            </thead>
            <tbody>
              {properties.map(([name, property]) => (
                <tr key={name} className="border-b border-slate-100 align-top dark:border-slate-800">
                  <td className="py-1 pr-3 font-mono">
                    {name}
                    {required.has(name) && <span className="ml-1 text-red-700 dark:text-red-300" title="required">*</span>}
                  </td>
                  <td className="py-1 pr-3 font-mono text-xs">{typeText(property)}</td>
                  <td className="py-1">
                    {property.description}
                    {bounds(property) && <span className="muted block text-xs">{bounds(property)}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
