/**
 * `netpay <command>`: each subcommand lives in the package it administers and is loaded only when
 * asked for, so `netpay wallet` never loads the broker's server code.
 */
const HELP = `netpay — micro-payments for the web

Usage: netpay <command> [options]

Commands:
  start                 install-free demo, each service on its own address (--host H puts all on H):
                          broker 127.0.0.2:4000, The Daily Planet 127.0.0.3:4001, The Bugle 127.0.0.4:4002,
                          bank 127.0.0.5:4100
  bank                  run the sandbox bank             (--port 4100 --data ./data --db URL)
  broker                run the broker                   (--port 4000 --data ./data --db URL --bank-url URL)
  admin <…>             operator commands on the broker's store:
                          vendor add --id ID --name NAME --url URL --release-url URL --public-key B64U
                          vendor list | audit | payouts | rotate-key
  vendor --site ID      run a demo newspaper vendor      (daily-planet | the-bugle)
  vendor redeem --site ID    redeem everything spent and not yet redeemed
  vendor account --site ID   show the vendor's account view
  wallet <…>            client-side wallet: register, login, buy, balance, coins, history, refund, get URL
  bench                 measure paid vs free throughput and payword vs Ed25519 verification

Common options: --data DIR (default ./data)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { runStart } = await import('./start.ts');
      return runStart(rest);
    }
    case 'bank': {
      const { runBank } = await import('@netpay/bank');
      await runBank(rest);
      return 0;
    }
    case 'broker': {
      const { runBroker } = await import('@netpay/broker');
      await runBroker(rest);
      return 0;
    }
    case 'admin': {
      const { runAdmin } = await import('@netpay/broker');
      return (await runAdmin(rest)) ?? 0;
    }
    case 'vendor': {
      const newspaper = await import('@netpay/newspaper');
      if (rest[0] === 'redeem') return (await newspaper.runVendorRedeem(rest.slice(1))) ?? 0;
      if (rest[0] === 'account') return (await newspaper.runVendorAccount(rest.slice(1))) ?? 0;
      await newspaper.runVendor(rest);
      return 0;
    }
    case 'wallet': {
      const { runWallet } = await import('@netpay/wallet');
      return runWallet(rest);
    }
    case 'bench': {
      const { runBench } = await import('@netpay/newspaper/bench');
      return (await runBench(rest)) ?? 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`netpay: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}
