export * from './clock.ts';
export * from './database.ts';
export * from './http.ts';
export * from './listen.ts';
export * from './metrics.ts';
export * from './rate-limit.ts';
export * from './secrets.ts';
export * from './html.ts';
