import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { ProtocolError } from './error-codes.ts';

interface Checker {
  check(value: unknown): boolean;
  firstError(value: unknown): { path: string; message: string } | undefined;
}

const checkers = new WeakMap<TSchema, Checker>();

function checkerFor(schema: TSchema): Checker {
  let checker = checkers.get(schema);
  if (checker) return checker;
  try {
    const compiled = TypeCompiler.Compile(schema);
    checker = {
      check: (value) => compiled.Check(value),
      firstError: (value) => compiled.Errors(value).First(),
    };
  } catch {
    // The compiler uses `new Function`, which a strict Content-Security-Policy forbids in browsers.
    checker = {
      check: (value) => Value.Check(schema, value),
      firstError: (value) => Value.Errors(schema, value).First(),
    };
  }
  checkers.set(schema, checker);
  return checker;
}

/**
 * Validates an untrusted wire value against a schema and returns it typed.
 *
 * @throws ProtocolError('bad_request') whose detail names the first failing path
 * @example
 * const body = parseWire(CheckpointRequestSchema, req.body);
 */
export function parseWire<T extends TSchema>(schema: T, value: unknown): Static<T> {
  const checker = checkerFor(schema);
  if (checker.check(value)) return value as Static<T>;
  const error = checker.firstError(value);
  const path = error?.path || '/';
  throw new ProtocolError('bad_request', `${path}: ${error?.message ?? 'invalid value'}`, { path });
}

/**
 * Whether a value matches a schema.
 *
 * @example
 * if (checkWire(TouchstoneSchema, body.touchstone)) …
 */
export function checkWire<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checkerFor(schema).check(value);
}
