export * from './app.ts';
export * from './card.ts';
export * from './cli-commands.ts';
export * from './faults.ts';
export * from './main.ts';
export * from './migrations.ts';
export * from './postings.ts';
export * from './saved-cards.ts';
export * from './schemas.ts';
export {
  type BankDb,
  type BankSchema,
  ensureMerchant,
  ensureMerchantKeyHash,
  postingsTotal,
  type StatementLine,
} from './store.ts';
export type { DestinationStatement, MerchantStatement } from './statements.ts';
