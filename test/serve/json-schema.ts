/**
 * A small JSON Schema (2020-12) checker for the OpenAPI test: it knows the keywords the
 * document may use, checks each keyword's value has the right type, resolves $refs, and
 * validates instances (the server's real responses) against the documented schemas.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['description', 'default', 'title', 'examples', 'format', 'deprecated', 'readOnly', 'writeOnly', 'contentMediaType', '$schema', 'id']);
const KEYWORDS: Record<string, (v: unknown) => boolean> = {
  type: (v) => typeof v === 'string' || (Array.isArray(v) && v.every((t) => typeof t === 'string')),
  properties: (v) => isObject(v),
  required: (v) => Array.isArray(v) && v.every((k) => typeof k === 'string'),
  additionalProperties: (v) => typeof v === 'boolean' || isObject(v),
  propertyNames: (v) => isObject(v),
  items: (v) => isObject(v) || typeof v === 'boolean',
  prefixItems: (v) => Array.isArray(v),
  anyOf: (v) => Array.isArray(v) && v.length > 0,
  oneOf: (v) => Array.isArray(v) && v.length > 0,
  allOf: (v) => Array.isArray(v) && v.length > 0,
  not: (v) => isObject(v),
  enum: (v) => Array.isArray(v) && v.length > 0,
  const: () => true,
  minimum: (v) => typeof v === 'number',
  maximum: (v) => typeof v === 'number',
  exclusiveMinimum: (v) => typeof v === 'number', // 2020-12: a number (OpenAPI 3.0's boolean form is invalid here)
  exclusiveMaximum: (v) => typeof v === 'number',
  multipleOf: (v) => typeof v === 'number' && v > 0,
  minLength: (v) => Number.isInteger(v),
  maxLength: (v) => Number.isInteger(v),
  pattern: (v) => typeof v === 'string' && isRegExp(v),
  minItems: (v) => Number.isInteger(v),
  maxItems: (v) => Number.isInteger(v),
  $ref: (v) => typeof v === 'string',
};
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);
function isRegExp(s: string): boolean {
  try {
    new RegExp(s, 'u');
    return true;
  } catch {
    return false;
  }
}

/** Problems with a schema's form (unknown keywords, wrong keyword values, bad types, unresolved refs), as `path: problem`. */
export function schemaProblems(schema: unknown, resolve: (ref: string) => unknown, path = '#'): string[] {
  if (typeof schema === 'boolean') return [];
  if (!isObject(schema)) return [`${path}: a schema must be an object`];
  const out: string[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue;
    const check = KEYWORDS[key];
    if (!check) out.push(`${path}: unknown keyword ${key}`);
    else if (!check(value)) out.push(`${path}: bad value for ${key}: ${JSON.stringify(value)}`);
  }
  const types = schema.type === undefined ? [] : ([] as unknown[]).concat(schema.type);
  for (const t of types) if (!TYPES.has(String(t))) out.push(`${path}: unknown type ${String(t)}`);
  if (typeof schema.$ref === 'string' && resolve(schema.$ref) === undefined) out.push(`${path}: $ref ${schema.$ref} does not resolve`);
  if (Array.isArray(schema.required) && isObject(schema.properties)) {
    for (const k of schema.required as string[]) if (!(k in schema.properties)) out.push(`${path}: required ${k} is not a property`);
  }
  if (isObject(schema.properties)) for (const [k, s] of Object.entries(schema.properties)) out.push(...schemaProblems(s, resolve, `${path}/properties/${k}`));
  for (const key of ['items', 'additionalProperties', 'not', 'propertyNames'] as const) if (isObject(schema[key])) out.push(...schemaProblems(schema[key], resolve, `${path}/${key}`));
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const) {
    if (Array.isArray(schema[key])) (schema[key] as unknown[]).forEach((s, i) => out.push(...schemaProblems(s, resolve, `${path}/${key}/${i}`)));
  }
  return out;
}

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Where `value` breaks `schema`, as `path: problem` (empty: it conforms). */
export function validate(schema: unknown, value: unknown, resolve: (ref: string) => unknown, path = '$'): string[] {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${path}: no value allowed`];
  const s = schema as Schema;
  if (typeof s.$ref === 'string') return validate(resolve(s.$ref), value, resolve, path);
  const out: string[] = [];
  if (s.type !== undefined) {
    const types = ([] as string[]).concat(s.type as string);
    const actual = typeOf(value);
    const ok = types.some((t) => t === actual || (t === 'integer' && Number.isInteger(value)) || (t === 'number' && actual === 'number'));
    if (!ok) return [`${path}: expected ${types.join('|')}, got ${actual}`];
  }
  if (s.enum && !(s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) out.push(`${path}: not one of ${JSON.stringify(s.enum)}`);
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) out.push(`${path}: expected ${JSON.stringify(s.const)}`);
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) out.push(`${path}: below ${s.minimum}`);
    if (typeof s.maximum === 'number' && value > s.maximum) out.push(`${path}: above ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) out.push(`${path}: not above ${s.exclusiveMinimum}`);
  }
  if (typeof value === 'string') {
    if (typeof s.maxLength === 'number' && value.length > s.maxLength) out.push(`${path}: longer than ${s.maxLength}`);
    if (typeof s.minLength === 'number' && value.length < s.minLength) out.push(`${path}: shorter than ${s.minLength}`);
  }
  if (Array.isArray(value) && s.items) value.forEach((v, i) => out.push(...validate(s.items, v, resolve, `${path}[${i}]`)));
  if (isObject(value)) {
    const props = (s.properties ?? {}) as Schema;
    for (const k of (s.required ?? []) as string[]) if (!(k in value)) out.push(`${path}: missing ${k}`);
    for (const [k, v] of Object.entries(value)) {
      if (k in props) out.push(...validate(props[k], v, resolve, `${path}.${k}`));
      else if (s.additionalProperties === false) out.push(`${path}: unexpected ${k}`);
      else if (isObject(s.additionalProperties)) out.push(...validate(s.additionalProperties, v, resolve, `${path}.${k}`));
    }
  }
  if (Array.isArray(s.anyOf) && !s.anyOf.some((alt) => validate(alt, value, resolve, path).length === 0)) out.push(`${path}: matches none of anyOf`);
  if (Array.isArray(s.allOf)) for (const alt of s.allOf) out.push(...validate(alt, value, resolve, path));
  return out;
}
