export * from './customer.ts';
export * from './discovery.ts';
export * from './documents.ts';
export * from './primitives.ts';
export * from './problems.ts';
export * from './vendor-broker.ts';
