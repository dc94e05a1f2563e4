import { PROBLEM_CONTENT_TYPE, ProblemSchema } from '@netpay/protocol';
import { type TSchema, Type } from '@sinclair/typebox';

/** A schema that appears in the document's `components.schemas` under its name, referenced where it is used. */
export interface NamedSchema {
  name: string;
  schema: TSchema;
}

/** Names a schema for the OpenAPI document: `named('ClaimResponse', ClaimResponseSchema)`. */
export function named(name: string, schema: TSchema): NamedSchema {
  return { name, schema };
}

export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiResponse {
  description: string;
  /** The body's schema; none for an empty answer. */
  schema?: TSchema | NamedSchema;
  /** Default application/json. */
  contentType?: string;
}

export interface ApiHeader {
  name: string;
  required: boolean;
  description: string;
  schema: TSchema;
}

/**
 * One JSON route of a service, as its route table lists it: the single place the OpenAPI document is made from
 * and the tests check the app against.
 */
export interface ApiRoute {
  method: ApiMethod;
  /** The route as Fastify knows it, e.g. `/api/v1/chains/:chainId/claim`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** The name of a security scheme of the description; none for an open route. */
  auth?: string;
  /** Schemas of the `:name` segments of `path`. */
  params?: Record<string, TSchema>;
  /** Optional query parameters. */
  query?: Record<string, TSchema>;
  headers?: ApiHeader[];
  body?: TSchema | NamedSchema;
  /** The answers that are not problems, by status. */
  responses: Record<number, ApiResponse>;
  /** The statuses this route may answer with an RFC 9457 problem (`application/problem+json`). */
  problems: number[];
}

export interface ApiDescription {
  title: string;
  version: string;
  description: string;
  /** Where the paths are rooted; omitted means relative to where the document is served. */
  serverUrl?: string;
  securitySchemes: Record<string, { description: string }>;
  routes: readonly ApiRoute[];
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request: the body, a parameter or a header is malformed',
  401: 'Unauthorized: no or a wrong bearer token',
  402: 'Payment required or declined',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'The Idempotency-Key was used with another request',
  429: 'Rate limited (Retry-After says when to try again)',
  500: 'Unexpected error (logged; no detail is shown)',
  502: 'An upstream service answered badly',
  503: 'Unavailable: an upstream service is down or the service is stopping',
  504: 'An upstream service did not answer in time',
};

/** `/api/v1/chains/:chainId/claim` → `/api/v1/chains/{chainId}/claim`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The statuses a route may answer, problems included, for tests that hold an app to its table. */
export function documentedStatuses(route: ApiRoute): number[] {
  return [...Object.keys(route.responses).map(Number), ...route.problems];
}

/**
 * The OpenAPI 3.1 document of a route table. Schemas are the TypeBox schemas the service validates with (TypeBox
 * emits JSON Schema 2020-12, the dialect of OpenAPI 3.1), so the document cannot drift from what is enforced.
 *
 * @example
 * app.get('/openapi.json', async () => openApiDocument(BANK_API));
 */
export function openApiDocument(description: ApiDescription): Record<string, unknown> {
  const components: Record<string, unknown> = { Problem: plain(ProblemSchema) };
  const ref = (schema: TSchema | NamedSchema): unknown => {
    if (!('name' in schema && 'schema' in schema && typeof schema.name === 'string')) return plain(schema as TSchema);
    const { name, schema: inner } = schema as NamedSchema;
    components[name] ??= plain(inner);
    return { $ref: `#/components/schemas/${name}` };
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of description.routes) {
    const parameters: unknown[] = [];
    for (const [name, schema] of Object.entries(route.params ?? {})) {
      parameters.push({ name, in: 'path', required: true, schema: plain(schema) });
    }
    for (const [name, schema] of Object.entries(route.query ?? {})) {
      parameters.push({ name, in: 'query', required: false, schema: plain(schema) });
    }
    for (const h of route.headers ?? []) {
      parameters.push({
        name: h.name,
        in: 'header',
        required: h.required,
        description: h.description,
        schema: plain(h.schema),
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, answer] of Object.entries(route.responses)) {
      responses[status] = {
        description: answer.description,
        ...(answer.schema
          ? { content: { [answer.contentType ?? 'application/json']: { schema: ref(answer.schema) } } }
          : {}),
      };
    }
    for (const status of route.problems) {
      responses[String(status)] = {
        description: STATUS_TEXT[status] ?? `Problem ${status}`,
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: ref(route.body) } } } }
        : {}),
      responses,
      security: route.auth ? [{ [route.auth]: [] }] : [],
    };
    const path = openApiPath(route.path);
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }

  const securitySchemes: Record<string, unknown> = {};
  for (const [name, scheme] of Object.entries(description.securitySchemes)) {
    securitySchemes[name] = { type: 'http', scheme: 'bearer', description: scheme.description };
  }
  return {
    openapi: '3.1.0',
    info: { title: description.title, version: description.version, description: description.description },
    ...(description.serverUrl ? { servers: [{ url: description.serverUrl }] } : {}),
    paths,
    components: { schemas: components, securitySchemes },
  };
}

/** A TypeBox schema as plain JSON (TypeBox marks its schemas with symbol keys, which JSON drops). */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema));
}

/** Any JSON object: for answers whose shape is described elsewhere (the OpenAPI document itself). */
export const AnyObjectSchema = Type.Object({}, { additionalProperties: true });

/** `GET /healthz`, which every service built by `createService` answers. */
export const HEALTH_ROUTE: ApiRoute = {
  method: 'GET',
  path: '/healthz',
  operationId: 'health',
  summary: 'Liveness: the process is up and answering',
  tag: 'operations',
  responses: {
    200: {
      description: 'Up',
      schema: named('Health', Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })),
    },
  },
  problems: [],
};

/** The route that serves a service's OpenAPI document, at `path`. */
export function openApiRoute(path: string): ApiRoute {
  return {
    method: 'GET',
    path,
    operationId: 'openApiDocument',
    summary: 'This OpenAPI 3.1 document',
    tag: 'operations',
    responses: { 200: { description: 'The document', schema: AnyObjectSchema } },
    problems: [],
  };
}
