export { accountSummary, articleResource, createNewspaperApp, type NewspaperAppOptions } from './app.ts';
export { BENCH_COMMAND, VENDOR_COMMANDS } from './cli-commands.ts';
export { parseVendorArgs, runVendor, runVendorAccount, runVendorRedeem, type VendorConfig } from './main.ts';
export { type Article, findArticle, loadSite, parseSite, SITE_NAMES, SITES, type Site, type Theme } from './site.ts';
